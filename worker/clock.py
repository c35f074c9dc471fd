"""The vendors' clock: Asia/Shanghai wall time, in which every vendor writes its times (without
an offset) and turns its day, so daily caps count by the Shanghai date."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
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
            moment = datetime.strptime(text, layout).replace(tzinfo=SHANGHAI)
        except ValueError:
            continue
        return in_utc_range(moment, field=field)
    raise ReportFormatError(f"{field} is not a time the vendors write: {text[:80]!r}")


def in_utc_range(moment: datetime, *, field: str) -> datetime:
    """`moment`, once sure it has a UTC equivalent (the store keeps UTC): 0001-01-01 in
    Shanghai is before the first day Python's calendar has."""
    try:
        moment.astimezone(UTC)
    except OverflowError:
        raise ReportFormatError(f"{field} is before the year 1 in UTC: {moment}") from None
    return moment


def vendor_day(moment: datetime) -> str:
    """The vendor's calendar day (Asia/Shanghai) that `moment` falls in, as YYYYMMDD."""
    return moment.astimezone(SHANGHAI).strftime("%Y%m%d")


def next_vendor_midnight(moment: datetime) -> datetime:
    local = moment.astimezone(SHANGHAI)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.astimezone(UTC)


def vendor_day_start(moment: datetime) -> datetime:
    local = moment.astimezone(SHANGHAI)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
