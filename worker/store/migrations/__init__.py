"""Alembic's environment and the store's revisions (a package so that they ship with herald)."""
