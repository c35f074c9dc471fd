"""Celery tasks: the only place where the store, the limits and the vendor adapters meet."""
