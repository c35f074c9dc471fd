"""Test-run set-up: every HERALD_ setting points at this run's own temporary resources.

`pytest_configure` runs before any test module is imported, so the Celery app (built when
`worker.app` is first imported) can only ever see this run's private redis-server, never a Redis
that belongs to someone else.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import RedisServer, SettingsEnv, need

RUN_DIR = Path(tempfile.mkdtemp(prefix="herald-tests-"))
REDIS = RedisServer(RUN_DIR / "redis")
CALLBACK_TOKEN = "test-callback-token"
KEPT_VARIABLES = frozenset({"HERALD_FUZZ_EXAMPLES", "HERALD_WEBHOOK_TEST_DOWN_S"})
"""Not settings: how the tests themselves run (tests/fuzz/conftest.py,
tests/integration/test_webhooks.py)."""
TEST_ENV = {
    "HERALD_DATA_DIR": str(RUN_DIR / "data"),
    "HERALD_DATABASE_URL": f"sqlite:///{RUN_DIR / 'session.db'}",
    "HERALD_REDIS_URL": REDIS.url(0),
    "HERALD_VEESING_APP_ID": "sandbox-app-id",
    "HERALD_VEESING_APP_KEY": "sandbox-app-key",
    "HERALD_CALLBACK_TOKEN": CALLBACK_TOKEN,
}


def pytest_configure(config: pytest.Config) -> None:
    for name in [n for n in os.environ if n.startswith(("HERALD_", "SANDBOX_"))]:
        if name not in KEPT_VARIABLES:
            del os.environ[name]
    os.environ.update(TEST_ENV)
    # Without a redis-server, tests that need one ask for `redis_url`, which skips or fails.
    with contextlib.suppress(FileNotFoundError):
        REDIS.start()


def pytest_unconfigure(config: pytest.Config) -> None:
    REDIS.stop()


@pytest.fixture(scope="session")
def redis_url() -> str:
    if not REDIS.answers():
        need("redis-server")
    return REDIS.url(0)


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[SettingsEnv]:
    """Change HERALD_ settings for one test; settings and the engine are read again after it."""
    from worker.settings import get_settings
    from worker.store import reset_engine

    get_settings.cache_clear()
    yield SettingsEnv(monkeypatch)
    monkeypatch.undo()
    get_settings.cache_clear()
    reset_engine()


def postgres_url() -> str:
    return os.environ.get(
        "HERALD_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(
    request: pytest.FixtureRequest, settings_env: SettingsEnv, tmp_path: Path
) -> Iterator[str]:
    """A new, empty job store (SQLite file, or a PostgreSQL database made for this test)."""
    from worker.store import migrate, reset_engine

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
        drop: Callable[[], None] | None = None
    else:
        url, drop = make_postgres_database()
    settings_env.setenv("HERALD_DATABASE_URL", url)
    reset_engine()
    migrate.upgrade(url)
    yield url
    reset_engine()
    if drop is not None:
        drop()


def make_postgres_database() -> tuple[str, Callable[[], None]]:
    import psycopg

    base = postgres_url()
    admin = base.replace("postgresql+psycopg://", "postgresql://")
    name = f"herald_test_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError:
        need("PostgreSQL at " + base)

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return base.rsplit("/", 1)[0] + "/" + name, drop
