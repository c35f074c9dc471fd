"""The store's schema revisions, oldest first: `0001_initial_schema` is the schema as it was
when migrations began."""
