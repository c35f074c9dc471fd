"""Times shown to people: in HERALD_DISPLAY_TZ (Asia/Shanghai by default) with the offset
written out; the setting must name an IANA zone; `--json` and the API stay in UTC."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from tests.stored_jobs import T0, phones, store_job
from tests.support import SettingsEnv
from worker.cli import main
from worker.display import display_optional, display_time
from worker.settings import Settings

MOMENT = datetime(2026, 11, 11, 2, 0, 5, tzinfo=UTC)


def test_a_time_is_shown_in_shanghai_by_default() -> None:
    assert display_time(MOMENT) == "2026-11-11 10:00:05 +08:00"


def test_the_same_instant_is_shown_alike_whatever_zone_it_comes_in() -> None:
    in_new_york = MOMENT.astimezone(timezone(timedelta(hours=-5)))

    assert display_time(in_new_york) == display_time(MOMENT)


def test_another_display_zone_is_used_with_its_own_offset(settings_env: SettingsEnv) -> None:
    settings_env.setenv("HERALD_DISPLAY_TZ", "America/New_York")

    assert display_time(MOMENT) == "2026-11-10 21:00:05 -05:00"
    assert display_time(MOMENT.replace(month=7)) == "2026-07-10 22:00:05 -04:00"  # summer time


def test_a_naive_time_is_refused_rather_than_guessed() -> None:
    with pytest.raises(ValueError, match="naive"):
        display_time(datetime(2026, 11, 11, 2, 0))


def test_an_absent_time_is_shown_as_a_dash() -> None:
    assert display_optional(None) == "-"


@pytest.mark.parametrize("name", ["Shanghai", "UTC+8", "+08:00", "Asia/Nowhere", "Asia/Shanghai/x"])
def test_a_display_zone_that_is_not_an_iana_name_is_refused(name: str) -> None:
    with pytest.raises(ValidationError, match="HERALD_DISPLAY_TZ"):
        Settings(display_tz=name)


@pytest.mark.usefixtures("store_url")
def test_the_cli_shows_the_display_zone_and_its_json_stays_utc(settings_env: SettingsEnv) -> None:
    settings_env.setenv("HERALD_DISPLAY_TZ", "Europe/London")
    job_id = store_job(phones(1), at=T0)

    shown = CliRunner().invoke(main, ["status", job_id])
    document = json.loads(CliRunner().invoke(main, ["status", job_id, "--json"]).output)

    assert "accepted  2026-11-11 02:00:00 +00:00" in shown.output
    assert document["created_at"] == "2026-11-11T02:00:00Z"
