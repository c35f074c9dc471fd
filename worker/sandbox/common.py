"""Small helpers every simulated vendor uses: request parameters, phones, emoji, vendor time."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from starlette.requests import Request

SHANGHAI = ZoneInfo("Asia/Shanghai")
VENDOR_TIME = "%Y-%m-%d %H:%M:%S"
MOBILE = re.compile(r"1[3-9][0-9]{9}")
SCOPE_KEY = "sandbox"


class BadEncoding(ValueError):
    """The request body or query string is not UTF-8 text."""


async def read_params(request: Request) -> dict[str, str]:
    """Parameters from the query string and a form body (the body wins on a clash).

    The documents' samples use both: Veesing's balance sample posts an empty body with the
    parameters in the URL, everything else posts `application/x-www-form-urlencoded` UTF-8.
    Raises `BadEncoding` when the percent-decoded bytes are not UTF-8.
    """
    params: dict[str, str] = {}
    try:
        params.update(_decode_pairs(request.scope.get("query_string", b"")))
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            form = await request.form()
            params.update({key: value for key, value in form.items() if isinstance(value, str)})
        else:
            body = await request.body()
            if body and not content_type.startswith("application/json"):
                params.update(_decode_pairs(body))
    except UnicodeDecodeError as error:
        raise BadEncoding(str(error)) from None
    return params


def _decode_pairs(raw: bytes) -> dict[str, str]:
    text = raw.decode("utf-8")
    return dict(parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict"))


def split_phones(value: str) -> list[str]:
    """The comma-separated phone list of a request (ASCII commas; blanks dropped)."""
    return [phone.strip() for phone in value.split(",") if phone.strip()]


def is_mobile(phone: str) -> bool:
    """A mainland China mobile number: 11 digits starting 13-19, no prefix."""
    return MOBILE.fullmatch(phone) is not None


def has_emoji(text: str) -> bool:
    """Emoji and other pictographs: anything beyond the BMP, dingbats, variation selector, ZWJ."""
    for char in text:
        code = ord(char)
        if code > 0xFFFF or 0x2600 <= code <= 0x27BF or code in (0xFE0F, 0x200D, 0x20E3):
            return True
    return False


def vendor_time(moment: datetime) -> str:
    """`yyyy-MM-dd HH:mm:ss`, Asia/Shanghai wall time, as every vendor writes it."""
    return moment.astimezone(SHANGHAI).strftime(VENDOR_TIME)


def parse_vendor_time(text: str) -> datetime:
    """Parse `yyyy-MM-dd HH:mm:ss` (single-digit fields allowed) as Shanghai time."""
    return datetime.strptime(text.strip(), VENDOR_TIME).replace(tzinfo=SHANGHAI)


def mark(request: Request, outcome: str, *, accepted: bool = False, detail: str = "") -> None:
    """Tell the request log how the vendor answered (and whether it accepted a message)."""
    note: dict[str, Any] = request.scope.setdefault(SCOPE_KEY, {})
    note["outcome"] = outcome
    note["accepted"] = accepted
    note["detail"] = detail
