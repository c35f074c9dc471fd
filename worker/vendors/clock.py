"""The vendors' clock: every vendor writes times as Asia/Shanghai wall time without an offset."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from worker.errors import ReportFormatError

SHANGHAI = ZoneInfo("Asia/Shanghai")
VENDOR_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y%m%d%H%M%S", "%Y-%m-%d %H:%M")


def parse_vendor_time(value: str | None, *, field: str) -> datetime | None:
    """An aware datetime from a vendor's wall-clock text, or None when the field is empty."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    for layout in VENDOR_TIME_FORMATS:
        try:
            return datetime.strptime(text, layout).replace(tzinfo=SHANGHAI)
        except ValueError:
            continue
    raise ReportFormatError(f"{field} is not a time the vendors write: {text!r}")
