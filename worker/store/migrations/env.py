"""Alembic's environment: migrates the connection `worker.store.migrate` hands over, or, run by
the `alembic` command, the store HERALD_DATABASE_URL names.

Types are rendered as plain SQLAlchemy types (what the database holds), so a revision never
imports the models: `UTCDateTime` is a timezone-aware DateTime, SQLModel's AutoString a String,
and the non-native enums VARCHARs, whose new values need no migration.
"""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

from worker.store.migrate import migration_connection
from worker.store.models import UTCDateTime  # and with it, every table on SQLModel.metadata


def render_item(kind: str, item: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    if kind != "type":
        return False
    if isinstance(item, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if isinstance(item, sa.Enum) and not item.native_enum:
        return f"sa.String(length={item.length})"
    if isinstance(item, AutoString):
        return "sa.String()" if item.length is None else f"sa.String(length={item.length})"
    return False


def run_migrations(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=True,  # SQLite alters a table by rebuilding it
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("herald's migrations run against a store: offline (--sql) mode is not set up")
given = context.config.attributes.get("connection")
if given is not None:
    run_migrations(given)
else:
    with migration_connection() as connection:
        run_migrations(connection)
