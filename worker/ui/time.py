"""Times as people read them: in the display time zone (HERALD_DISPLAY_TZ, Asia/Shanghai by
default), whatever the zone of the server. The store keeps UTC and the API ISO 8601 with an
offset; only what a person reads is converted."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from worker.settings import get_settings

DISPLAY_FORMAT = "%Y-%m-%d %H:%M:%S"


def display_zone() -> ZoneInfo:
    return ZoneInfo(get_settings().display_tz)


def display_time(moment: datetime | None) -> str:
    """`moment` as wall-clock time in the display zone; empty for no time. A naive datetime is
    taken as UTC, as the store means it."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo("UTC"))
    return moment.astimezone(display_zone()).strftime(DISPLAY_FORMAT)
