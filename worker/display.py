"""Times as people read them: in the display time zone (`HERALD_DISPLAY_TZ`, Asia/Shanghai by
default), with the offset written out so that no reader has to guess the zone.

The CLI (and the operator page) show times through `display_time`; the HTTP API and every
`--json` keep ISO 8601 in UTC, for programs.
"""

from __future__ import annotations

from datetime import datetime

from worker.settings import get_settings

DISPLAY_FORMAT = "%Y-%m-%d %H:%M:%S"


def display_time(moment: datetime) -> str:
    """`moment` in the display zone, e.g. `2026-11-11 10:00:00 +08:00`.

    A naive datetime is refused (ValueError): herald's times are all aware, and guessing the
    zone of one that is not would show a wrong hour.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a naive datetime has no time zone to convert from")
    local = moment.astimezone(get_settings().display_zone)
    offset = local.strftime("%z")
    return f"{local.strftime(DISPLAY_FORMAT)} {offset[:3]}:{offset[3:]}"


def display_optional(moment: datetime | None, *, absent: str = "-") -> str:
    """`display_time`, or `absent` for a time that is not there."""
    return absent if moment is None else display_time(moment)
