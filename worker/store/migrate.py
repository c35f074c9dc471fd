"""Schema migrations (Alembic), configured in code so they run from the installed package.

`upgrade` brings a store to the newest schema: `herald db upgrade` (compose's one-shot `migrate`
service), `herald up`, the API's start-up and the tests call it; on a store already there it
changes nothing. The URL is HERALD_DATABASE_URL (worker.settings) unless one is given. The
revisions live in `worker/store/migrations/versions/`; `alembic revision --autogenerate -m ...`
at the repository root (alembic.ini) drafts the next one from the models.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from worker.settings import get_settings
from worker.store.db import make_engine

MIGRATIONS = Path(__file__).with_name("migrations")
BASELINE = "0001"  # the schema `create_all` made before there were migrations
UPGRADE_LOCK = 0x6865_7261_6C64  # "herald": one upgrade at a time on a PostgreSQL store


def upgrade(url: str | None = None) -> None:
    """Migrate the store to the newest revision (creating the SQLite file and its folder)."""
    with migration_connection(url) as connection:
        config = alembic_config(connection)
        if _made_before_migrations(connection):
            command.stamp(config, BASELINE)
        command.upgrade(config, "head")


def current(url: str | None = None) -> str | None:
    """The store's revision; None for a store never migrated."""
    engine = make_engine(url or get_settings().store_url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head() -> str:
    """The newest revision this code knows."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert revision is not None
    return revision


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """Alembic's configuration without an ini file; `connection` is the one to migrate."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@contextmanager
def migration_connection(url: str | None = None) -> Iterator[sa.Connection]:
    """A connection in a transaction that commits at the end, ready for migrations.

    SQLite: foreign keys are off while tables may be rebuilt (batch mode drops and recreates a
    table, which must not touch the rows that refer to it); the pragma only takes effect outside
    a transaction. PostgreSQL: an advisory lock makes concurrent upgrades wait for each other.
    """
    engine = make_engine(url or get_settings().store_url)
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
                connection.commit()
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.execute(
                        sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": UPGRADE_LOCK}
                    )
                yield connection
    finally:
        engine.dispose()


def _made_before_migrations(connection: sa.Connection) -> bool:
    tables = set(sa.inspect(connection).get_table_names())
    return "job" in tables and "alembic_version" not in tables
