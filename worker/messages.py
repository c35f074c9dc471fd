"""What producers may ask for, and the rules a request must keep before anything is stored.

The models serve the HTTP API (FastAPI turns a broken rule into a 422 naming the field), the
Python producer and the CLI alike. Rules that depend on settings (default signature, length cap,
configured vendors) are checked by `worker.producer`, which raises the same kind of error.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
)

from worker.enums import CapPolicy, Purpose
from worker.mms import EMOJI
from worker.webhook_urls import check_callback_url

MOBILE = re.compile(r"1[3-9][0-9]{9}")  # ASCII: `\d` matches any script's digits
SEPARATORS = re.compile(r"[\s-]")
COUNTRY_PREFIXES = ("+86", "0086", "86")
SIGNATURE = re.compile(r"^【[^【】]{2,16}】|【[^【】]{2,16}】$")


def normalise_mobile(value: str) -> str:
    """A mainland China mobile number as 11 digits; a +86/0086/86 prefix and spaces are dropped.

    Called once per recipient, 100,000 times for a big job: a number already written as 11
    digits is answered by one match."""
    if MOBILE.fullmatch(value):
        return value
    number = SEPARATORS.sub("", value)
    for prefix in COUNTRY_PREFIXES:
        if number.startswith(prefix) and len(number) == 11 + len(prefix):
            number = number[len(prefix) :]
            break
    if not MOBILE.fullmatch(number):
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
    if len(set(numbers)) == len(numbers):
        return numbers
    seen: set[str] = set()
    for number in numbers:
        if number in seen:
            raise ValueError(f"{number} is listed twice; a job sends once to each number")
        seen.add(number)
    return numbers


def has_signature(content: str) -> bool:
    return bool(SIGNATURE.search(content))


def storable(value: str) -> str:
    """Text every store can keep: PostgreSQL refuses NUL characters, and a lone surrogate
    (JSON's `"\\ud800"`) has no UTF-8 form for any database."""
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (it has a lone surrogate)") from None
    return value


class ProducerInput(BaseModel):
    """A model of what producers (and operators) send: every text in it must be storable."""

    @field_validator("*")
    @classmethod
    def storable_text(cls, value: object) -> object:
        if isinstance(value, str):
            storable(value)
        return value


def plain_mobiles_first(value: object, handler: ValidatorFunctionWrapHandler) -> object:
    """A list of numbers all written as 11 digits (the usual big job) is taken as it is, in one
    pass in C; any other list is validated number by number, so each problem names its index."""
    if isinstance(value, list) and value:
        try:
            if all(map(MOBILE.fullmatch, value)):
                return value
        except TypeError:  # an item that is not text: the handler names it
            pass
    return handler(value)


Mobile = Annotated[str, AfterValidator(normalise_mobile)]
Recipients = Annotated[
    list[Mobile],
    Field(min_length=1),
    WrapValidator(plain_mobiles_first),
    AfterValidator(distinct_numbers),
]


class JobOptions(ProducerInput):
    """What every request may ask besides its content and numbers: why, when, and once only.

    The requests inherit it after their own content (`class SmsRequest(CapOptions, SmsContent)`)
    so their fields keep their order: the content's first, then these. That order is the
    order of a 422's problems and of the API's documentation.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

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
    callback_url: Annotated[str, AfterValidator(check_callback_url)] | None = Field(
        None,
        description="An http(s) URL the recipients' status changes are POSTed to, signed "
        "(README, Webhooks); default HERALD_WEBHOOK_URL.",
    )


class CapOptions(JobOptions):
    """What an SMS or MMS job does when a daily cap or a refused account stops its vendor."""

    on_daily_cap: CapPolicy | None = Field(
        None,
        description="defer, failover or fail when a daily cap stops it; "
        "default failover for SMS, defer for MMS.",
    )
    allow_failover: bool = Field(
        True, description="May go through another vendor when this one refuses the account."
    )


class SmsRecipient(ProducerInput):
    """One number of an SMS job, with the values of the content's `{placeholders}` for it."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    phone: Mobile = Field(description="A mainland China mobile number.")
    values: dict[str, str] = Field(
        default_factory=dict,
        description="This number's value of each `{placeholder}` of the content, by name.",
    )

    @field_validator("values")
    @classmethod
    def storable_values(cls, values: dict[str, str]) -> dict[str, str]:
        for name, value in values.items():
            storable(name)
            storable(value)
        return values


def number_or_recipient(value: Any, handler: ValidatorFunctionWrapHandler) -> SmsRecipient:
    """A plain number is a recipient without values; its problem stays at `to[i]`, as before
    recipients could carry values."""
    if isinstance(value, str):
        return SmsRecipient(phone=normalise_mobile(value))
    recipient: SmsRecipient = handler(value)
    return recipient


def distinct_recipients(recipients: list[SmsRecipient]) -> list[SmsRecipient]:
    distinct_numbers([r.phone for r in recipients])
    return recipients


SmsRecipientIn = Annotated[
    SmsRecipient, WrapValidator(number_or_recipient, json_schema_input_type=str | SmsRecipient)
]
SmsRecipients = Annotated[
    list[SmsRecipientIn], Field(min_length=1), AfterValidator(distinct_recipients)
]


SmsText = Annotated[str, Field(min_length=1), AfterValidator(no_emoji)]
SMS_TEXT = (
    "The text, with its 【signature】 unless HERALD_SMS_SIGNATURE is set; "
    "`{name}` is replaced by each recipient's value of `name`."
)
SMS_VENDOR = "A configured SMS vendor; default the setting."


class SmsContent(ProducerInput):
    to: SmsRecipients = Field(
        description="Mainland China mobile numbers, each at most once: a number, or "
        '`{"phone": ..., "values": {...}}` with the values of the content\'s placeholders.'
    )
    content: SmsText = Field(description=SMS_TEXT)
    vendor: str | None = Field(None, description=SMS_VENDOR)

    def phones(self) -> list[str]:
        return [r.phone for r in self.to]


class SmsRequest(CapOptions, SmsContent):
    """`POST /v1/sms`: one content to one or more numbers."""


class SmsFileText(ProducerInput):
    content: SmsText = Field(description=SMS_TEXT)
    vendor: str | None = Field(None, description=SMS_VENDOR)


class SmsFileOptions(CapOptions, SmsFileText):
    """`POST /v1/sms/file`: an SMS request's fields but `to`, whose numbers (and placeholder
    values) are the file's."""


def valid_base64(value: str) -> str:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("is not valid base64") from None
    return value


class MediaIn(ProducerInput):
    """One media file, its bytes as base64 (the CLI reads them from a file path)."""

    model_config = ConfigDict(extra="forbid")

    type: Annotated[str, AfterValidator(str.lower)] = Field(description="jpg, gif, mp3, amr ...")
    base64: Annotated[str, Field(min_length=1), AfterValidator(valid_base64)] = Field(
        description="The file's bytes, base64-encoded."
    )

    def data(self) -> bytes:
        return base64.b64decode(self.base64)


class FrameIn(ProducerInput):
    model_config = ConfigDict(extra="forbid")

    seconds: int = Field(5, description="How long the frame shows.")
    text: str | None = Field(None, description="The frame's text, if any (no emoji).")
    media: MediaIn | None = Field(None, description="The frame's picture, sound or video, if any.")


class MmsContent(ProducerInput):
    to: Recipients = Field(description="Mainland China mobile numbers, each at most once.")
    title: str = Field(description="The MMS title (5C: at most 40 characters).")
    frames: list[FrameIn] = Field(
        min_length=1,
        description="The slides, in order (Veesing: at most 15 and 80 KB in all; 5C: 50 KB).",
    )
    vendor: Literal["veesing", "fivec"] | None = Field(
        None, description="An MMS vendor; default HERALD_DEFAULT_MMS_VENDOR."
    )


class MmsRequest(CapOptions, MmsContent):
    """`POST /v1/mms`: one MMS (title and frames) to one or more numbers."""


class VoiceContent(ProducerInput):
    to: Recipients = Field(description="Mainland China mobile numbers, one call each.")
    template_id: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z_-]+$")] = (
        Field(description="The id of a voice template the vendor approved.")
    )
    variables: str = Field(description="A code: 2-8 digits; a notice: at most 50 characters.")
    kind: Literal["code", "notice"] = Field(
        description="code: a verification code read out; notice: a notice's text."
    )


class VoiceRequest(JobOptions, VoiceContent):
    """`POST /v1/voice`: an approved voice template spoken to each number (one call each)."""

    purpose: Purpose | None = Field(  # type: ignore[assignment]
        None, description="Default: verification for a code, notification for a notice."
    )


class PersonalisedRecipient(ProducerInput):
    model_config = ConfigDict(extra="forbid")

    to: Mobile = Field(description="A mainland China mobile number.")
    text: Annotated[str, Field(min_length=1), AfterValidator(no_emoji)] = Field(
        description="This number's own text (no emoji)."
    )


class PersonalisedMmsContent(ProducerInput):
    title: str = Field(description="The MMS title, the same for every number (at most 40).")
    picture: MediaIn = Field(description="The one picture of every message: jpg, gif or png.")
    recipients: list[PersonalisedRecipient] = Field(
        min_length=1, description="Each number with its own text; each number at most once."
    )


class PersonalisedMmsRequest(JobOptions, PersonalisedMmsContent):
    """`POST /v1/mms/personalised` (5C batch): one picture and title, a text per number."""
