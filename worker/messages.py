"""What producers may ask for, and the rules a request must keep before anything is stored.

The models serve the HTTP API (FastAPI turns a broken rule into a 422 naming the field), the
Python producer and the CLI alike. Rules that depend on settings (default signature, length cap,
configured vendors) are checked by `worker.producer`, which raises the same kind of error.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from worker.mms import EMOJI
from worker.store import Purpose

MOBILE = re.compile(r"^1[3-9]\d{9}$")
COUNTRY_PREFIXES = ("+86", "0086", "86")
SIGNATURE = re.compile(r"^【[^【】]{2,16}】|【[^【】]{2,16}】$")


def normalise_mobile(value: str) -> str:
    """A mainland China mobile number as 11 digits; a +86/0086/86 prefix and spaces are dropped."""
    number = re.sub(r"[\s-]", "", value)
    for prefix in COUNTRY_PREFIXES:
        if number.startswith(prefix) and len(number) == 11 + len(prefix):
            number = number[len(prefix) :]
            break
    if not MOBILE.match(number):
        raise ValueError(
            f"{value!r} is not a mainland China mobile number (11 digits starting 13-19)"
        )
    return number


def no_emoji(value: str) -> str:
    found = EMOJI.search(value)
    if found:
        raise ValueError(
            f"emoji are not allowed (the vendors refuse them): {found.group()!r} "
            f"at position {found.start()}"
        )
    return value


def distinct_numbers(numbers: list[str]) -> list[str]:
    seen: set[str] = set()
    for number in numbers:
        if number in seen:
            raise ValueError(f"{number} is listed twice; a job sends once to each number")
        seen.add(number)
    return numbers


def has_signature(content: str) -> bool:
    return bool(SIGNATURE.search(content))


Mobile = Annotated[str, AfterValidator(normalise_mobile)]
Recipients = Annotated[list[Mobile], Field(min_length=1), AfterValidator(distinct_numbers)]


class SmsRequest(BaseModel):
    """`POST /v1/sms`: one content to one or more numbers."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    to: Recipients = Field(description="Mainland China mobile numbers, each at most once.")
    content: Annotated[str, Field(min_length=1), AfterValidator(no_emoji)] = Field(
        description="The text, with its 【signature】 unless HERALD_SMS_SIGNATURE is set."
    )
    vendor: str | None = Field(None, description="A configured SMS vendor; default the setting.")
    purpose: Purpose = Field(
        Purpose.MARKETING,
        description="marketing (never to opted-out numbers), notification or verification.",
    )
    send_at: AwareDatetime | None = Field(None, description="Send at this time, not before.")
    expires_at: AwareDatetime | None = Field(
        None, description="Never send after this time (a code is worthless once expired)."
    )
    idempotency_key: Annotated[str, Field(min_length=1, max_length=128)] | None = Field(
        None, description="The same key returns the first job instead of making a second."
    )
