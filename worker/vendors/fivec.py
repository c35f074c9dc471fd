"""Meilian 5C (美联软通) MMS: send, personalised batch send, balance, and the report pull.

Read beside the Meilian 5C MMS document (docs/vendors.md). Every call is a form POST to
m.5c.com.cn (setting HERALD_FIVEC_BASE). Replies are one line of text: `success:msgid`, or
`error:<reason>` where the document writes some reasons with a capital `Error:` and one with a
trailing full stop; both are read case-blind and without the stop. `FIVEC_ERRORS` maps every
documented reason to an error class; a send answered by neither is `UnreadableReply`.

Reports are not pushed: `api/recv/index.php` returns each record once and then forgets it, so
`fetch_report_body` hands back the raw bytes for the caller to store before
`parse_report_records` reads them (docs/design.md, promise 5).
"""

from __future__ import annotations

import base64
import codecs
import hashlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from urllib.parse import quote_plus

import httpx

from worker.clock import SHANGHAI, in_utc_range
from worker.delivery_reports import DeliveryReport, status_from_word
from worker.enums import Channel
from worker.errors import (
    FieldProblem,
    InvalidInput,
    MessageRejected,
    RecipientRejected,
    ReportFormatError,
    UnknownReply,
    UnreadableReply,
    VendorBlocked,
)
from worker.mms import Media, Mms, encode_for_fivec, fivec_title_problems, validate_for_fivec
from worker.vendors.codes import ErrorClass, refusal
from worker.vendors.transport import exchange

VENDOR = "fivec"
SEND_PATH = "/api/send/caixin_send.php"
BATCH_PATH = "/api/send/caixin_send_batch.php"
BALANCE_PATH = "/api/query/"
RECV_PATH = "/api/recv/index.php"

BATCH_PICTURE_TYPES = frozenset({"jpg", "jpeg", "gif", "png"})
BATCH_MAX_XML_BYTES = 100 * 1024 * 1024
XML_DECLARATION = "<?xml version='1.0' encoding='UTF-8' ?>"
NO_RECORD = "no record"
UNDECODABLE = "\ufffd"
"""What a byte that is not UTF-8 decodes to: a msgid holding it cannot be matched to reports."""
DIGITS = re.compile(r"^[0-9]+$")
BALANCE = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
REPORT_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
PYTHON_LITERAL_CODECS = frozenset({"unicode-escape", "raw-unicode-escape"})
REPORT_TIME = re.compile(r"^([0-9]{4}-[0-9]{2}-[0-9]{2})([0-9]{2}:[0-9]{2}:[0-9]{2})$")


FIVEC_ERRORS: Mapping[str, ErrorClass] = {
    "missing apikey": VendorBlocked,  # APIKEY 为空: our configuration
    "missing password": VendorBlocked,  # 密码为空: our configuration
    "missing message title": MessageRejected,  # 彩信标题为空
    "missing recipient": RecipientRejected,  # 号码为空: no usable number in the request
    "account is blocked": VendorBlocked,  # 帐号被禁用
    "unrecognized encoding": MessageRejected,  # 编码未能识别
    "apikey or password error": VendorBlocked,  # APIKEY 或密码错误
    "unauthorized ip address": VendorBlocked,  # 未授权 IP 地址
    "account balance is insufficient": VendorBlocked,  # 余额不足
    "mms body too long": MessageRejected,  # 彩信文件过大 (written "Error:MMS body too long.")
}
"""Every reason of sections 2.2, 3.2 and 4.2, as `reason_key` normalises it, and its class.

Any other `error:` text (the document's generic "发送失败 error:msgid") is `UnknownReply`.
"""


def reason_key(reason: str) -> str:
    """`MMS body too long.` and `mms body too long` are the same reason."""
    return reason.strip().rstrip(".").strip().lower()


@dataclass(frozen=True)
class FivecCredentials:
    username: str
    password: str = field(repr=False)
    apikey: str = field(repr=False)

    def form(self) -> dict[str, str]:
        return {"apikey": self.apikey, "username": self.username, "password": self.password}

    def report_form(self) -> dict[str, str]:
        """The report pull's login: the password as upper-case MD5 hex, as in section 5.1.2."""
        digest = hashlib.md5(self.password.encode("utf-8"), usedforsecurity=False).hexdigest()
        return {"username": self.username, "password_md5": digest.upper(), "apikey": self.apikey}


def _reply_text(body: bytes) -> str:
    return body.decode("utf-8", errors="replace").strip()


def _raise_error_reply(text: str) -> None:
    """Raise the mapped class when `text` is an `error:` reply; return when it is not one."""
    prefix, colon, reason = text.partition(":")
    if not colon or prefix.strip().lower() != "error":
        return
    raise refusal(
        VENDOR,
        FIVEC_ERRORS,
        reason_key(reason),
        text[:200],
        undocumented=f"undocumented error: {text[:200]!r}",
    )


def parse_send_reply(body: bytes) -> str:
    """The msgid of a `success:msgid` reply; the mapped class for an `error:` reply.

    A body that is neither (empty, an HTML page, bytes in another encoding) is `UnreadableReply`,
    and so is a success without a readable msgid: the vendor may have taken the MMS, so it must
    not be sent again.
    """
    text = _reply_text(body)
    _raise_error_reply(text)
    prefix, colon, msgid = text.partition(":")
    if not colon or prefix.strip().lower() != "success":
        raise UnreadableReply(VENDOR, f"neither success: nor error: {text[:200]!r}")
    msgid = msgid.strip()
    if not msgid or UNDECODABLE in msgid:
        raise UnreadableReply(VENDOR, f"success without a readable msgid: {text[:200]!r}")
    return msgid


def parse_balance_reply(body: bytes) -> Decimal:
    """The balance of section 4.2 (a bare number, "100"); the mapped class for `error:`."""
    text = _reply_text(body)
    _raise_error_reply(text)
    if not BALANCE.match(text):
        raise UnknownReply(VENDOR, f"balance is not a number: {text[:200]!r}")
    return Decimal(text)


# Personalised batch (section 3) ------------------------------------------------------------------


def batch_problems(title: str, picture: Media, texts: Mapping[str, str]) -> list[FieldProblem]:
    """The rules of section 3 a personalised batch breaks: one frame, one picture for all."""
    problems = fivec_title_problems(title)
    if picture.type not in BATCH_PICTURE_TYPES:
        problems.append(
            FieldProblem("picture.type", f"one of {', '.join(sorted(BATCH_PICTURE_TYPES))}")
        )
    if not picture.data:
        problems.append(FieldProblem("picture.data", "must not be empty"))
    if not texts:
        problems.append(FieldProblem("texts", "at least one number and its text"))
    for mobile, text in texts.items():
        if not DIGITS.match(mobile):
            problems.append(FieldProblem(f"texts[{mobile!r}]", "the key must be a number"))
        if not text.strip():
            problems.append(FieldProblem(f"texts[{mobile!r}]", "must not be empty"))
    return problems


def encode_batch_xml(title: str, picture: Media, texts: Mapping[str, str]) -> str:
    """The `xmlData` document of section 3.3, before the whole is URL-encoded.

    Title and texts are URL-encoded (UTF-8) inside it; the picture is plain base64.
    """
    root = ET.Element("mms")
    ET.SubElement(root, "mmsTitle").text = quote_plus(title, encoding="utf-8")
    ET.SubElement(root, "mmsPictureType").text = picture.type
    ET.SubElement(root, "mmsPictureContent").text = base64.b64encode(picture.data).decode("ascii")
    body = ET.SubElement(root, "mmsBody")
    for mobile, text in texts.items():
        data = ET.SubElement(body, "mmsBodyData")
        ET.SubElement(data, "mmsMobile").text = mobile
        ET.SubElement(data, "mmsTextContent").text = quote_plus(text, encoding="utf-8")
    return XML_DECLARATION + ET.tostring(root, encoding="unicode")


# Reports (section 5) -----------------------------------------------------------------------------


def decode_report_body(body: bytes, encoding: str | None = None) -> str:
    """The report page as text (section 5.1: "UTF-8、GBK"): in the charset the reply declared,
    when it did; else strict UTF-8 first, then GBK. Short GBK text can also be valid UTF-8, so
    the declared charset is the one to trust. A charset Python cannot decode with (unknown, or
    not a text encoding, or a codec that raises a bare `UnicodeError`) is passed over, and so is
    one of Python's literal codecs (unicode_escape), which no page is written in."""
    candidates = [encoding] if encoding and not _python_literal_codec(encoding) else []
    for candidate in [*candidates, "utf-8-sig", "gbk"]:
        try:
            return body.decode(candidate)
        except (ValueError, LookupError):  # UnicodeError is a ValueError
            continue
    raise ReportFormatError(f"report body is neither UTF-8 nor GBK: {body[:80]!r}")


def _python_literal_codec(encoding: str) -> bool:
    try:
        return codecs.lookup(encoding).name in PYTHON_LITERAL_CODECS
    except (LookupError, ValueError):
        return False


@dataclass(frozen=True)
class ReportPage:
    """A report page as fetched: its bytes, and the charset its reply declared (if any)."""

    body: bytes
    charset: str | None


def parse_report_records(body: bytes, encoding: str | None = None) -> list[DeliveryReport]:
    """Every record of a report page (sections 5.1.5 and 5.1.6); `no record` is an empty list.

    Each is a report of the MMS `msgid` to `mobile`, with 5C's word kept verbatim as the vendor
    status (DELIVRD, UNDELIV, ...). The account's extension and the 编号 column (only in the
    six-field layout) are kept in its extras as `extno` and `serial`, left out when absent or
    empty.

    Records are separated by `;`, fields by `,`, in one of three layouts:
    4 fields `msgid,mobile,status,time`; 5 fields `extno,msgid,mobile,status,time`;
    6 fields `extno,msgid,serial,mobile,status,time`. Blank records and whitespace around
    fields are ignored, and so is whitespace inside the time (the document prints
    `20 13-09-12 09:09:32`). Anything else raises `ReportFormatError` naming the record.
    """
    text = decode_report_body(body, encoding).strip()
    if text.lower() == NO_RECORD:
        return []
    if not text:
        raise ReportFormatError("empty report body (5C writes 'no record' when it has none)")
    records: list[DeliveryReport] = []
    for index, record in enumerate(text.split(";")):
        if record.strip():
            records.append(_parse_record(index, record))
    return records


def _parse_record(index: int, record: str) -> DeliveryReport:
    fields = [part.strip() for part in record.split(",")]
    where = f"report record {index} ({record.strip()[:120]!r})"
    extno: str | None = None
    serial: str | None = None
    if len(fields) == 4:
        msgid, mobile, status, time = fields
    elif len(fields) == 5:
        extno, msgid, mobile, status, time = fields
    elif len(fields) == 6:
        extno, msgid, serial, mobile, status, time = fields
    else:
        raise ReportFormatError(f"{where} has {len(fields)} fields; expected 4, 5 or 6")
    for name, value in (("msgid", msgid), ("mobile", mobile)):
        if not DIGITS.match(value):
            raise ReportFormatError(f"{where}: {name} is not a number: {value!r}")
    if extno is not None and extno and not DIGITS.match(extno):
        raise ReportFormatError(f"{where}: extension is not digits: {extno!r}")
    if serial is not None and not DIGITS.match(serial):
        raise ReportFormatError(f"{where}: serial is not a number: {serial!r}")
    if not status or any(char.isspace() for char in status):
        raise ReportFormatError(f"{where}: status is empty or has whitespace: {status!r}")
    extras = {"extno": extno} if extno else {}
    if serial is not None:
        extras["serial"] = serial
    return DeliveryReport(
        vendor=VENDOR,
        channel=Channel.MMS,
        vendor_ref=msgid,
        phone=mobile,
        status=status_from_word(status),
        vendor_status=status,
        reported_at=_report_time(time, where),
        extras=extras,
    )


def _report_time(value: str, where: str) -> datetime:
    moment = _calendar_time(value)
    if moment is None:
        raise ReportFormatError(f"{where}: time is not yyyy-MM-dd HH:mm:ss: {value!r}")
    if isinstance(moment, str):
        raise ReportFormatError(f"{where}: time is not a calendar time: {value!r}")
    return in_utc_range(moment, field=f"{where}: time")


@lru_cache(maxsize=4096)
def _calendar_time(value: str) -> datetime | str | None:
    """The Shanghai time `value` writes; None when it is not of the form, the words of the
    refusal when it is no calendar time. Cached: a page of many records repeats its seconds,
    and reading a time is most of the cost of reading a record."""
    match = REPORT_TIME.match(re.sub(r"\s+", "", value))
    if match is None:
        return None
    try:
        return datetime.strptime(f"{match[1]} {match[2]}", REPORT_TIME_FORMAT).replace(
            tzinfo=SHANGHAI
        )
    except ValueError as exc:
        return str(exc)


# The client --------------------------------------------------------------------------------------


class Fivec:
    """The MMS interface at m.5c.com.cn."""

    def __init__(self, client: httpx.Client, base_url: str, credentials: FivecCredentials) -> None:
        self._client = client
        self._base_url = base_url.rstrip("/")
        self._credentials = credentials

    def send(self, mobiles: Sequence[str], mms: Mms) -> str:
        """Send one MMS to the numbers (`caixin_send.php`); return its msgid.

        Raises `InvalidInput` before any call when the MMS breaks a rule of section 2.
        """
        validate_for_fivec(mms)
        if not mobiles:
            raise InvalidInput([FieldProblem("mobile", "at least one number")])
        form = self._credentials.form() | {
            "mobile": ",".join(mobiles),
            "title": mms.title,
            "content": encode_for_fivec(mms),
        }
        return parse_send_reply(self._post(SEND_PATH, form))

    def send_batch(self, title: str, picture: Media, texts: Mapping[str, str]) -> str:
        """Send one picture and title with a text per number (`caixin_send_batch.php`).

        `texts` maps each number to its own text. Returns the batch's msgid.
        """
        problems = batch_problems(title, picture, texts)
        xml_data = encode_batch_xml(title, picture, texts)
        if len(quote_plus(xml_data, encoding="utf-8")) > BATCH_MAX_XML_BYTES:
            problems.append(FieldProblem("xmlData", "at most 100 MB once encoded"))
        if problems:
            raise InvalidInput(problems)
        form = self._credentials.form() | {"xmlData": xml_data}
        return parse_send_reply(self._post(BATCH_PATH, form))

    def balance(self) -> Decimal:
        """The account's balance (`api/query/`)."""
        return parse_balance_reply(self._post(BALANCE_PATH, self._credentials.form()))

    def fetch_report_body(self) -> bytes:
        """The raw report page's bytes (see `fetch_report_page`)."""
        return self.fetch_report_page().body

    def fetch_report_page(self) -> ReportPage:
        """The raw report page (`api/recv/index.php`): store it, then `parse_report_records`
        with its charset.

        The records in it are gone from the vendor once this returns. An `error:` page raises
        its mapped class instead.
        """
        return self._report_page(self._credentials.report_form())

    def query_reports(
        self, mobiles: Sequence[str], start: datetime, end: datetime
    ) -> list[DeliveryReport]:
        """The reports of some numbers between two times (sections 5.1.3 and 5.1.4).

        The query can be asked again, so the page is parsed here rather than stored first.
        """
        form = self._credentials.report_form() | {
            "from": str(int(start.timestamp())),
            "to": str(int(end.timestamp())),
            "mobile": ",".join(mobiles),
        }
        page = self._report_page(form)
        return parse_report_records(page.body, page.charset)

    def _report_page(self, form: dict[str, str]) -> ReportPage:
        url = self._base_url + RECV_PATH
        response = exchange(self._client, VENDOR, "POST", url, data=form)
        _raise_error_reply(_reply_text(response.content))
        return ReportPage(response.content, response.charset_encoding)

    def _post(self, path: str, form: dict[str, str]) -> bytes:
        return exchange(self._client, VENDOR, "POST", self._base_url + path, data=form).content
