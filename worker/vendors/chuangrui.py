"""Chuangrui (創瑞) SMS: send, balance, the status-report push and the MO (uplink) push.

Read beside the Chuangrui SMS document (docs/vendors.md). The address comes from the vendor's
support (setting HERALD_CHUANGRUI_URL); send (`type=pt`) and balance (`type=balance`) are posted
to it as forms. A send is answered by one CSV line, `code,sendid,invalid,success,black,msg`
(section 1.7; a field may carry a leading space, as in the document's sample) or, when `code` is
not 0, by `code,msg` only. `CHUANGRUI_CODES` maps every documented code to an error class; a
body that is no such line (empty, an HTML page, no numeric code first) is `UnreadableReply`.

Report pushes are signed: `name = MD5(AccessSecret + random + timestamp)` (section 3.1);
`verify_report_signature` checks it and the timestamp's freshness before anything is parsed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation

import httpx

from worker.clock import SHANGHAI, parse_vendor_time
from worker.delivery_reports import DeliveryReport, InboundReply, status_from_word
from worker.enums import Channel
from worker.errors import (
    CallbackRejected,
    FieldProblem,
    InvalidInput,
    MessageRejected,
    RecipientRejected,
    ReportFormatError,
    TransientError,
    UnknownReply,
    UnreadableReply,
    VendorBlocked,
)
from worker.vendors.codes import ErrorClass, refusal
from worker.vendors.transport import exchange

VENDOR = "chuangrui"
STIME_FORMAT = "%Y-%m-%d %H:%M:%S"
CONTENT_MAX_CHARS = 500
DIGITS = re.compile(r"^[0-9]+$")
CODE = re.compile(r"^-?[0-9]+$")
UNDECODABLE = "\ufffd"
"""What a byte that is not UTF-8 decodes to: a send id holding it cannot be matched to reports."""
MILLISECOND_TIMESTAMP_DIGITS = 13
MAX_COUNT_DIGITS = 18
"""A count longer than this is no count (and `int()` refuses text over 4,300 digits)."""
MO_FIELD_SEPARATOR = "#@#"
MO_RECORD_SEPARATOR = "#@@#"


CHUANGRUI_CODES: Mapping[str, ErrorClass] = {
    "1": MessageRejected,  # 含有敏感詞匯
    "2": MessageRejected,  # 含有敏感詞匯
    "3": RecipientRejected,  # 沒有號碼: none of the numbers given is usable
    "4": MessageRejected,  # 包含sql語句
    "10": VendorBlocked,  # 賬號不存在
    "11": VendorBlocked,  # 賬號注銷
    "12": VendorBlocked,  # 賬號停用
    "13": VendorBlocked,  # IP鑒權失敗
    "14": MessageRejected,  # 格式錯誤: a malformed request; sending it again fails the same way
    "-1": TransientError,  # 系統異常
}
"""Every failure code of section 1.7.3 (send) and the class it raises; 0 is success."""

BALANCE_CODES: Mapping[str, ErrorClass] = {
    code: CHUANGRUI_CODES[code] for code in ("10", "11", "12", "13")
}
"""Every failure code of section 2.4 (balance); the others are undocumented there."""


@dataclass(frozen=True)
class ChuangruiCredentials:
    name: str
    pwd: str = field(repr=False)

    def form(self) -> dict[str, str]:
        return {"name": self.name, "pwd": self.pwd}


@dataclass(frozen=True)
class Submission:
    """The vendor took the request: one `send_id` for every number in it (section 1.7.1)."""

    send_id: str
    invalid_count: int
    success_count: int
    black_count: int
    message: str


@dataclass(frozen=True)
class Balance:
    balance: Decimal


def _reply_fields(body: bytes) -> list[str]:
    """The reply line's fields, or `UnreadableReply` when the body is no such line: empty, or
    not starting with a numeric code (an HTML page, bytes in another encoding). The message
    field may carry text in any encoding: the code decides."""
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        raise UnreadableReply(VENDOR, "empty reply")
    fields = [part.strip() for part in text.split(",", 5)]
    if not CODE.match(fields[0]):
        raise UnreadableReply(VENDOR, f"not a reply line: {text[:200]!r}")
    return fields


def _raise_failure(fields: list[str], table: Mapping[str, ErrorClass]) -> None:
    reply = ",".join(fields)[:200]
    raise refusal(VENDOR, table, fields[0], reply, undocumented=f"undocumented reply: {reply!r}")


def parse_send_reply(body: bytes) -> Submission:
    """Parse the send reply line; raise the mapped `NotSent` class for a documented failure.

    A `0` whose other fields cannot be read is `UnreadableReply` (ambiguous): the vendor says it
    took the message, so it must not be sent again. So is a body that is no reply line at all.
    """
    fields = _reply_fields(body)
    if fields[0] != "0":
        _raise_failure(fields, CHUANGRUI_CODES)
    reply = ",".join(fields)[:200]
    if len(fields) != 6 or not fields[1] or UNDECODABLE in fields[1]:
        raise UnreadableReply(VENDOR, f"code 0 without the documented six fields: {reply!r}")
    send_id, invalid, success, black, message = fields[1:]
    counts = (invalid, success, black)
    if not all(DIGITS.match(count) and len(count) <= MAX_COUNT_DIGITS for count in counts):
        raise UnreadableReply(VENDOR, f"code 0 with counts that are not numbers: {reply!r}")
    return Submission(send_id, int(invalid), int(success), int(black), message)


def parse_balance_reply(body: bytes) -> Balance:
    """Parse the balance reply, `code,balance` (section 2.3 names the two fields, not the layout,
    so the send reply's CSV is assumed)."""
    fields = _reply_fields(body)
    if fields[0] != "0":
        _raise_failure(fields, BALANCE_CODES)
    if len(fields) < 2:
        raise UnknownReply(VENDOR, f"balance reply without a balance: {','.join(fields)!r}")
    try:
        balance: Decimal | None = Decimal(fields[1])
    except InvalidOperation:
        balance = None
    if balance is None or not balance.is_finite():  # Decimal reads "NaN" and "Infinity" too
        raise UnknownReply(VENDOR, f"balance is not a number: {fields[1][:50]!r}")
    return Balance(balance)


def send_problems(
    mobiles: Sequence[str], content: str, sign: str, extno: str | None
) -> list[FieldProblem]:
    """The rules of section 1.6 a send request breaks."""
    problems: list[FieldProblem] = []
    if not mobiles:
        problems.append(FieldProblem("mobile", "at least one number"))
    if not 1 <= len(content) <= CONTENT_MAX_CHARS:
        problems.append(
            FieldProblem("content", f"1 to {CONTENT_MAX_CHARS} characters, is {len(content)}")
        )
    if not sign.strip():
        problems.append(FieldProblem("sign", "must not be empty (the vendor requires a sign)"))
    if extno is not None and not DIGITS.match(extno):
        problems.append(FieldProblem("extno", "digits only"))
    return problems


class Chuangrui:
    """The SMS interface at the address Chuangrui's support gives (one URL for every call)."""

    def __init__(
        self, client: httpx.Client, base_url: str, credentials: ChuangruiCredentials
    ) -> None:
        self._client = client
        self._url = base_url
        self._credentials = credentials

    def send(
        self,
        mobiles: Sequence[str],
        content: str,
        sign: str,
        *,
        stime: datetime | None = None,
        extno: str | None = None,
    ) -> Submission:
        """Send one content to the numbers (`type=pt`); `stime` schedules it at the vendor.

        Raises `InvalidInput` before any call when a rule of section 1.6 is broken.
        """
        problems = send_problems(mobiles, content, sign, extno)
        if problems:
            raise InvalidInput(problems)
        form = self._credentials.form() | {
            "content": content,
            "mobile": ",".join(mobiles),
            "sign": sign,
            "type": "pt",
        }
        if stime is not None:
            form["stime"] = stime.astimezone(SHANGHAI).strftime(STIME_FORMAT)
        if extno is not None:
            form["extno"] = extno
        response = exchange(self._client, VENDOR, "POST", self._url, data=form)
        return parse_send_reply(response.content)

    def balance(self) -> Balance:
        """The account's balance (`type=balance`)."""
        form = self._credentials.form() | {"type": "balance"}
        response = exchange(self._client, VENDOR, "POST", self._url, data=form)
        return parse_balance_reply(response.content)


# Pushes ------------------------------------------------------------------------------------------


def verify_report_signature(
    fields: Mapping[str, str], access_secret: str, now: datetime, max_age_s: float
) -> None:
    """Accept a status-report push only if `name == MD5(AccessSecret + random + timestamp)`
    and `timestamp` is within `max_age_s` of `now` (either side).

    The digest is compared as lower-case hex, whatever case the vendor writes; `timestamp` is
    UNIX time in seconds, or milliseconds when it has 13 digits (the document gives no unit).
    Raises `CallbackRejected`; the message never contains the secret or the expected digest.
    """
    name = (fields.get("name") or "").strip().lower()
    random = fields.get("random") or ""
    timestamp = (fields.get("timestamp") or "").strip()
    if not name:
        raise CallbackRejected("chuangrui report push without a signature (name)")
    if not random:
        raise CallbackRejected("chuangrui report push without random")
    if not DIGITS.match(timestamp) or len(timestamp) > MILLISECOND_TIMESTAMP_DIGITS:
        raise CallbackRejected(
            f"chuangrui report push timestamp is not UNIX time: {timestamp[:40]!r}"
        )
    expected = hashlib.md5(
        (access_secret + random + timestamp).encode("utf-8"), usedforsecurity=False
    ).hexdigest()
    if not hmac.compare_digest(expected.encode("ascii"), name.encode("utf-8")):
        raise CallbackRejected("chuangrui report push signature does not match")
    sent_s = int(timestamp)
    if len(timestamp) >= MILLISECOND_TIMESTAMP_DIGITS:
        sent_s = sent_s // 1000
    age_s = now.timestamp() - sent_s
    if abs(age_s) > max_age_s:
        raise CallbackRejected(
            f"chuangrui report push timestamp is {age_s:.0f} s from now (limit {max_age_s:g} s)"
        )


def verify_push_login(
    fields: Mapping[str, str], *, name: str | None = None, pwd: str | None = None
) -> None:
    """Check the `name`/`pwd` the vendor was told to send with MO pushes (section 4.1; both may be
    left empty) and the `pwd` of report pushes (section 3.1). Only the given ones are checked.
    """
    for key, expected in (("name", name), ("pwd", pwd)):
        if expected is None:
            continue
        given = fields.get(key) or ""
        if not hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
            raise CallbackRejected(f"chuangrui push {key} does not match")


def parse_report_push(fields: Mapping[str, str]) -> list[DeliveryReport]:
    """Parse a status-report push (`sendid`, `time`, `mobile`, `state`), once
    `verify_report_signature` has accepted it: one report per number in `mobile`, all with the
    push's `state` (section 3.1).

    `state` is kept verbatim as the vendor status (DELIVRD, UNDELIV, ERR:104, ...); `time` is
    the first number's report time. Raises `ReportFormatError` naming the missing or malformed
    field.
    """
    send_id = _required(fields, "sendid")
    state = _required(fields, "state")
    if any(char.isspace() for char in state):
        raise ReportFormatError(f"state has whitespace in it: {state!r}")
    mobiles = [part.strip() for part in _required(fields, "mobile").split(",")]
    for mobile in mobiles:
        if not DIGITS.match(mobile):
            raise ReportFormatError(f"mobile is not a list of numbers: {fields['mobile']!r}")
    time = parse_vendor_time(fields.get("time"), field="time")
    return [
        DeliveryReport(
            vendor=VENDOR,
            channel=Channel.SMS,
            vendor_ref=send_id,
            phone=mobile,
            status=status_from_word(state),
            vendor_status=state,
            reported_at=time,
        )
        for mobile in mobiles
    ]


def parse_mo_push(fields: Mapping[str, str], *, system_extno_length: int) -> list[InboundReply]:
    """Parse the `args` of an MO push: records split by `#@@#`, fields by `#@#`
    (mobile, content, time, system extension + custom extension), one reply per record.

    The vendor advises splitting the extension by the system part's length, which only the
    account's configuration knows, hence `system_extno_length` (3 in the document's example).
    The custom part (the `extno` we sent with) is the reply's `vendor_ref`, the system part is
    kept in its extras as `system_extno`; either may be empty, and is then left out.
    Blank records are skipped; anything else malformed raises `ReportFormatError`.
    """
    args = fields.get("args")
    if args is None or not args.strip():
        raise ReportFormatError("args is missing")
    replies: list[InboundReply] = []
    for index, record in enumerate(args.split(MO_RECORD_SEPARATOR)):
        if not record.strip():
            continue
        parts = record.split(MO_FIELD_SEPARATOR)
        if len(parts) == 3:
            parts.append("")  # the extension "may be empty", separator and all
        if len(parts) != 4:
            raise ReportFormatError(
                f"MO record {index} has {len(parts)} fields, expected 4: {record[:200]!r}"
            )
        mobile, content, time, extno = (parts[0].strip(), parts[1], parts[2], parts[3].strip())
        if not DIGITS.match(mobile):
            raise ReportFormatError(f"MO record {index}: mobile is not a number: {mobile!r}")
        if extno and not DIGITS.match(extno):
            raise ReportFormatError(f"MO record {index}: extension is not digits: {extno!r}")
        system_extno = extno[:system_extno_length]
        replies.append(
            InboundReply(
                vendor=VENDOR,
                phone=mobile,
                content=content,
                vendor_ref=extno[system_extno_length:] or None,
                received_at=parse_vendor_time(time, field=f"MO record {index} time"),
                extras={"system_extno": system_extno} if system_extno else {},
            )
        )
    return replies


def _required(fields: Mapping[str, str], name: str) -> str:
    value = (fields.get(name) or "").strip()
    if not value:
        raise ReportFormatError(f"{name} is missing")
    return value
