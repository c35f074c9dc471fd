"""The store's migrations: an empty store upgraded to head holds exactly the models' schema, on
SQLite and on PostgreSQL; `herald db upgrade` and `herald db current` drive them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlmodel import SQLModel

from tests.conftest import make_postgres_database
from tests.support import SettingsEnv
from worker.cli import main
from worker.store import make_engine, migrate


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a store with no table at all."""
    drop: Callable[[], None] | None = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'not-yet' / 'store.db'}"
    else:
        url, drop = make_postgres_database()
    yield url
    if drop is not None:
        drop()


def differences(url: str) -> list[Any]:
    """What Alembic's autogenerate finds between the store and the models."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return list(compare_metadata(MigrationContext.configure(connection), SQLModel.metadata))
    finally:
        engine.dispose()


def test_an_empty_store_upgraded_to_head_matches_the_models(empty_store: str) -> None:
    assert migrate.current(empty_store) is None

    migrate.upgrade(empty_store)

    assert migrate.current(empty_store) == migrate.head()
    assert differences(empty_store) == []


def test_the_comparison_sees_a_missing_index(empty_store: str) -> None:
    migrate.upgrade(empty_store)
    engine = make_engine(empty_store)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP INDEX ix_delivery_report_key"))
    engine.dispose()

    assert [d[0] for d in differences(empty_store)] == ["add_index"]


def test_upgrading_a_store_at_head_changes_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate.upgrade(url)
    migrate.upgrade(url)

    assert migrate.current(url) == migrate.head()


def test_a_store_made_before_migrations_is_taken_over_with_its_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = make_engine(url)
    # How stores were made before there were migrations: `create_all` of the models of then,
    # the schema of the baseline revision, and no alembic_version table.
    with migrate.migration_connection(url) as connection:
        command.upgrade(migrate.alembic_config(connection), migrate.BASELINE)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE alembic_version"))
    with engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO suppression VALUES ('13800138000', 'STOP', '2026-11-24')")
        )

    migrate.upgrade(url)

    assert migrate.current(url) == migrate.head()
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT phone FROM suppression")).scalars().all() == [
            "13800138000"
        ]
    engine.dispose()


def test_herald_db_current_prints_the_head_after_herald_db_upgrade(
    settings_env: SettingsEnv, tmp_path: Path
) -> None:
    settings_env.setenv("HERALD_DATABASE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    runner = CliRunner()

    before = runner.invoke(main, ["db", "current"])
    upgraded = runner.invoke(main, ["db", "upgrade"])
    after = runner.invoke(main, ["db", "current"])

    assert before.exit_code == 0, before.output
    assert before.output.strip() == "none"
    assert upgraded.exit_code == 0, upgraded.output
    assert migrate.head() in upgraded.output
    assert after.exit_code == 0, after.output
    assert after.output.strip() == migrate.head()
