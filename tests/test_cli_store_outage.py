"""Unit test: a `herald` command whose store is unreachable says so in one line and exits 75
(try again), never with a driver's traceback or the store's address."""

from __future__ import annotations

from click.testing import CliRunner

from tests.support import SettingsEnv
from worker.cli import main
from worker.store import reset_engine

UNREACHABLE = "postgresql+psycopg://herald:secret-pw@127.0.0.1:1/herald"


def test_herald_status_while_the_store_is_unreachable(settings_env: SettingsEnv) -> None:
    settings_env.setenv("HERALD_DATABASE_URL", UNREACHABLE)
    reset_engine()

    result = CliRunner().invoke(main, ["status", "0123456789abcdef"])

    assert result.exit_code == 75
    assert "the job store is unreachable (OperationalError); try again shortly" in result.output
    assert "secret-pw" not in result.output
    assert "Traceback" not in result.output
