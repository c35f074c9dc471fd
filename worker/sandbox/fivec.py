"""Meilian 5C (美联软通) MMS: send, personalised batch, balance, report pull.

Replies are short text: `success:<msgid>` or one of the documented `error:...` lines, keeping
their case (`Error:Missing message title`, `Error:MMS body too long.`). Every accepted phone gets
a status report after `push_delay_s`, queued for `api/recv/index.php`, which returns each record
once (a destructive read), `;`-terminated, in the 4-, 5- or 6-field layouts of 5.1.5/5.1.6
(`fivec_report_layout`), as UTF-8 or GBK (`fivec_report_encoding`), or `no record`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import unquote_plus

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from worker.sandbox.common import (
    BadEncoding,
    is_mobile,
    mark,
    parse_vendor_time,
    read_params,
    split_phones,
    vendor_time,
)
from worker.sandbox.config import SandboxConfig
from worker.sandbox.state import SandboxState

SEND_PATH = "/api/send/caixin_send.php"
BATCH_PATH = "/api/send/caixin_send_batch.php"
QUERY_PATHS = ("/api/query/", "/api/query", "/api/query/index.php")
RECV_PATH = "/api/recv/index.php"
ACCOUNT = "fivec"
MAX_BODY = 50 * 1024

MISSING_APIKEY = "error:Missing apikey"
MISSING_PASSWORD = "error:Missing password"
MISSING_TITLE = "Error:Missing message title"
MISSING_RECIPIENT = "error:Missing recipient"
BLOCKED = "error:Account is blocked"
BAD_ENCODING = "error:Unrecognized encoding"
WRONG_CREDENTIALS = "error:APIKEY or password error"
IP_REFUSED = "error:Unauthorized IP address"
NO_BALANCE = "error:Account balance is insufficient"
TOO_LONG = "Error:MMS body too long."
NO_RECORD = "no record"

FILE_NAME = re.compile(r"([1-9][0-9]*)_([123])\.([a-z0-9]+)")
EXTENSIONS = {"1": {"txt"}, "2": {"gif", "jpg", "jpeg"}, "3": {"mid", "amr"}}
PICTURE_TYPES = {"jpg", "gif", "jpeg", "png"}
DELIVERED = "DELIVRD"
FAILED_STATES = ("UNDELIV", "EXPIRED", "MK:0005")
Layout = Literal["4", "5", "6"]


class EncodingError(ValueError):
    """The MMS body cannot be decoded as section 2.3 (or 3.3) describes."""


@dataclass(frozen=True)
class MmsFile:
    frame: int
    kind: int
    extension: str
    data: bytes


def decode_content(content: str) -> list[MmsFile]:
    """The files of a `caixin_send.php` content: `1_1.txt,<base64>;1_2.gif,<base64>;...`.

    The document's sample calls the parameter "BASE64 编码组合内容"; both readings are taken:
    the combination as such, or the combination itself base64-encoded (UTF-8).
    """
    try:
        return _parse_files(content)
    except EncodingError as direct:
        try:
            inner = base64.b64decode(content, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise direct from None
        return _parse_files(inner)


def _parse_files(text: str) -> list[MmsFile]:
    items = [item for item in text.split(";") if item.strip()]
    if not items:
        raise EncodingError("no file")
    files = []
    for item in items:
        name, comma, data = item.strip().partition(",")
        match = FILE_NAME.fullmatch(name)
        if not comma or match is None:
            raise EncodingError(f"file name {name[:40]!r}")
        frame, kind, extension = match.groups()
        if extension not in EXTENSIONS[kind]:
            raise EncodingError(f"{name}: type {kind} is not .{extension}")
        try:
            decoded = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise EncodingError(f"{name}: not base64") from None
        if kind == "1":
            try:
                decoded.decode("utf-8")
            except UnicodeDecodeError:
                raise EncodingError(f"{name}: text is not UTF-8") from None
        files.append(MmsFile(int(frame), int(kind), extension, decoded))
    return files


@dataclass(frozen=True)
class BatchMessage:
    mobile: str
    text: str


@dataclass(frozen=True)
class Batch:
    title: str
    picture: bytes
    messages: list[BatchMessage]


def decode_batch(xml_data: str) -> Batch:
    """The `xmlData` of `caixin_send_batch.php` (form-decoded once, or twice when it was
    URL-encoded before the form encoding, as "整体 UrlEncode 后提交" may mean)."""
    text = xml_data.strip()
    if not text.startswith("<"):
        text = unquote_plus(text).strip()
    try:
        root = ElementTree.fromstring(text.encode("utf-8"))
    except ElementTree.ParseError as error:
        raise EncodingError(f"xmlData: {error}") from None
    title = unquote_plus((root.findtext("mmsTitle") or "").strip())
    picture_type = (root.findtext("mmsPictureType") or "").strip().lower()
    if not title or picture_type not in PICTURE_TYPES:
        raise EncodingError("mmsTitle or mmsPictureType")
    try:
        picture = base64.b64decode(
            "".join((root.findtext("mmsPictureContent") or "").split()), validate=True
        )
    except (binascii.Error, ValueError):
        raise EncodingError("mmsPictureContent is not base64") from None
    messages = [
        BatchMessage(
            (data.findtext("mmsMobile") or "").strip(),
            unquote_plus((data.findtext("mmsTextContent") or "").strip()),
        )
        for data in root.iter("mmsBodyData")
    ]
    if not messages:
        raise EncodingError("no mmsBodyData")
    return Batch(title, picture, messages)


@dataclass
class Report:
    msgid: str
    mobile: str
    state: str
    at: datetime
    layout: Layout
    ext: str
    number: str

    def record(self) -> str:
        tail = f"{self.mobile},{self.state},{vendor_time(self.at)}"
        if self.layout == "4":
            return f"{self.msgid},{tail}"
        if self.layout == "5":
            return f"{self.ext},{self.msgid},{tail}"
        return f"{self.ext},{self.msgid},{self.number},{tail}"


class ReportIn(BaseModel):
    msgid: str
    mobile: str
    state: str = DELIVERED
    time: str | None = Field(None, description="yyyy-MM-dd HH:mm:ss; default now.")
    layout: Layout | None = None
    ext: str | None = None


def _all_layouts() -> list[Layout]:
    return ["4", "5", "6"]


def _two_states() -> list[str]:
    return [DELIVERED, "UNDELIV"]


class BulkReports(BaseModel):
    """N generated records in the given layouts and states (chosen at random per record)."""

    count: int = Field(ge=1, le=1_000_000)
    layouts: list[Layout] = Field(default_factory=_all_layouts, min_length=1)
    states: list[str] = Field(default_factory=_two_states, min_length=1)
    msgid: str | None = Field(None, description="One msgid for all; default: one per record.")


class ReportsIn(BaseModel):
    """`POST /_sandbox/fivec/reports`: records to queue, and the body encoding from now on."""

    reports: list[ReportIn] = Field(default_factory=list)
    bulk: BulkReports | None = None
    encoding: Literal["utf-8", "gbk"] | None = None


def text(request: Request | None, reply: str, outcome: str, *, accepted: bool = False) -> Response:
    if request is not None:
        mark(request, outcome, accepted=accepted, detail=reply)
    return Response(reply.encode("utf-8"), media_type="text/html; charset=utf-8")


class FiveC:
    def __init__(self, config: SandboxConfig, state: SandboxState) -> None:
        self._config = config
        self._state = state
        self._msgids = itertools.count(30911175558600 + state.rng.randrange(10**6))
        self._numbers = itertools.count(2267476)
        self._queue: list[tuple[float, Report]] = []
        self.encoding: str = config.fivec_report_encoding
        state.on_reset(self._reset)

    def _reset(self) -> None:
        self._queue.clear()
        self.encoding = self._config.fivec_report_encoding

    def router(self) -> APIRouter:
        router = APIRouter()
        both = ["GET", "POST"]
        router.add_api_route(SEND_PATH, self.send, methods=both, response_class=Response)
        router.add_api_route(BATCH_PATH, self.send_batch, methods=both, response_class=Response)
        for path in QUERY_PATHS:
            router.add_api_route(path, self.balance, methods=both, response_class=Response)
        router.add_api_route(RECV_PATH, self.recv, methods=both, response_class=Response)
        return router

    def control_router(self) -> APIRouter:
        router = APIRouter(prefix="/_sandbox/fivec")
        router.add_api_route("/reports", self.enqueue, methods=["POST"])
        return router

    def next_msgid(self) -> str:
        return str(next(self._msgids))

    def fault_reply(self, reply: str | None) -> Response:
        """The documented plain failure of a send (发送失败 `error:<msgid>`), or `reply`."""
        return text(None, reply or f"error:{self.next_msgid()}", "fault")

    # --- sending ---

    def _refusal(self, params: dict[str, str], *, sending: bool) -> str | None:
        if not params.get("apikey"):
            return MISSING_APIKEY
        if not params.get("password"):
            return MISSING_PASSWORD
        if (
            params.get("apikey") != self._config.fivec_apikey
            or params.get("username") != self._config.fivec_username
            or params.get("password") != self._config.fivec_password
        ):
            return WRONG_CREDENTIALS
        account = self._state.accounts[ACCOUNT]
        if account.ip_blocked:
            return IP_REFUSED
        if sending and account.status != "active":
            return BLOCKED
        return None

    async def _authorised(self, request: Request, *, sending: bool) -> Mapping[str, str] | Response:
        """The request's parameters, or the documented refusal of its encoding or account."""
        try:
            params = await read_params(request)
        except BadEncoding:
            return text(request, BAD_ENCODING, "error")
        refused = self._refusal(params, sending=sending)
        if refused is not None:
            return text(request, refused, "error")
        return params

    async def send(self, request: Request) -> Response:
        params = await self._authorised(request, sending=True)
        if isinstance(params, Response):
            return params
        title = params.get("title") or params.get("tittle") or ""
        if not title:
            return text(request, MISSING_TITLE, "error")
        phones = [phone for phone in split_phones(params.get("mobile", "")) if is_mobile(phone)]
        if not phones:
            return text(request, MISSING_RECIPIENT, "error")
        content = params.get("content", "")
        if len(content.encode("utf-8")) > MAX_BODY:
            return text(request, TOO_LONG, "error")
        try:
            files = decode_content(content)
        except EncodingError as error:
            mark(request, "error", detail=f"{BAD_ENCODING}: {error}")
            return text(None, BAD_ENCODING, "error")
        words = [
            f.data.decode("utf-8") for f in sorted(files, key=lambda f: f.frame) if f.kind == 1
        ]
        return self._accept(request, [(phone, "\n".join(words)) for phone in phones], title)

    async def send_batch(self, request: Request) -> Response:
        params = await self._authorised(request, sending=True)
        if isinstance(params, Response):
            return params
        try:
            batch = decode_batch(params.get("xmlData", ""))
        except EncodingError as error:
            mark(request, "error", detail=f"{BAD_ENCODING}: {error}")
            return text(None, BAD_ENCODING, "error")
        if any(len(batch.picture) + len(m.text.encode()) > MAX_BODY for m in batch.messages):
            return text(request, TOO_LONG, "error")
        messages = [(m.mobile, m.text) for m in batch.messages if is_mobile(m.mobile)]
        if not messages:
            return text(request, BAD_ENCODING, "error")
        return self._accept(request, messages, batch.title)

    def _accept(self, request: Request, messages: list[tuple[str, str]], title: str) -> Response:
        account = self._state.accounts[ACCOUNT]
        if account.balance < len(messages):
            return text(request, NO_BALANCE, "error")
        account.balance -= len(messages)
        msgid = self.next_msgid()
        now = self._state.clock.now()
        ready = self._state.clock.timestamp() + self._config.push_delay_s
        at = now + timedelta(seconds=self._config.push_delay_s)
        self._state.log_sends("fivec", "mms", msgid, messages, title=title)
        for phone, _ in messages:
            state = (
                DELIVERED if self._state.delivered(phone) else self._state.rng.choice(FAILED_STATES)
            )
            self._queue.append((ready, self._report(msgid, phone, state, at)))
        return text(request, f"success:{msgid}", "ok", accepted=True)

    def _report(
        self,
        msgid: str,
        mobile: str,
        state: str,
        at: datetime,
        layout: Layout | None = None,
        ext: str | None = None,
    ) -> Report:
        rng = self._state.rng
        configured = self._config.fivec_report_layout
        chosen: Layout
        if layout is not None:
            chosen = layout
        elif configured == "mixed":
            chosen = rng.choice(_all_layouts())
        else:
            chosen = configured
        if ext is None:
            mixed_blank = configured == "mixed" and rng.random() < 0.25
            ext = "" if mixed_blank else self._config.fivec_extno
        return Report(msgid, mobile, state, at, chosen, ext, str(next(self._numbers)))

    # --- balance and reports ---

    async def balance(self, request: Request) -> Response:
        try:
            params = await read_params(request)
        except BadEncoding:
            return text(request, WRONG_CREDENTIALS, "error")
        refused = self._refusal(params, sending=False)
        if refused is not None:
            # The balance query documents only these two errors.
            refused = refused if refused == IP_REFUSED else WRONG_CREDENTIALS
            return text(request, refused, "error")
        return text(request, str(self._state.accounts[ACCOUNT].balance), "ok")

    async def recv(self, request: Request) -> Response:
        try:
            params = await read_params(request)
        except BadEncoding:
            return text(request, WRONG_CREDENTIALS, "error")
        password_md5 = hashlib.md5(self._config.fivec_password.encode()).hexdigest()
        if (
            params.get("apikey") != self._config.fivec_apikey
            or params.get("username") != self._config.fivec_username
            or params.get("password_md5", "").lower() != password_md5
        ):
            return text(request, WRONG_CREDENTIALS, "error")
        if self._state.accounts[ACCOUNT].ip_blocked:
            return text(request, IP_REFUSED, "error")
        taken = self._take(params)
        mark(request, "ok", detail=f"{len(taken)} records")
        body = NO_RECORD if not taken else "".join(f"{r.record()};" for r in taken)
        return Response(
            body.encode(self.encoding), media_type=f"text/html; charset={self.encoding}"
        )

    def _take(self, params: dict[str, str]) -> list[Report]:
        """Remove and return the due records (of the given mobiles and time span, if any)."""
        now = self._state.clock.timestamp()
        mobiles = set(split_phones(params.get("mobile", "")))
        span = (_int(params.get("from")), _int(params.get("to")))
        limit = self._config.fivec_recv_max
        taken: list[Report] = []
        kept: list[tuple[float, Report]] = []
        for ready, report in self._queue:
            wanted = (
                ready <= now
                and (not mobiles or report.mobile in mobiles)
                and (span[0] is None or report.at.timestamp() >= span[0])
                and (span[1] is None or report.at.timestamp() <= span[1])
                and (limit == 0 or len(taken) < limit)
            )
            if wanted:
                taken.append(report)
            else:
                kept.append((ready, report))
        self._queue = kept
        return taken

    async def enqueue(self, reports: ReportsIn) -> dict[str, int | str]:
        now = self._state.clock.now()
        due = self._state.clock.timestamp()
        if reports.encoding is not None:
            self.encoding = reports.encoding
        for item in reports.reports:
            at = now if item.time is None else parse_vendor_time(item.time)
            report = self._report(item.msgid, item.mobile, item.state, at, item.layout, item.ext)
            self._queue.append((due, report))
        if reports.bulk is not None:
            bulk, rng = reports.bulk, self._state.rng
            for _ in range(bulk.count):
                msgid = bulk.msgid or self.next_msgid()
                mobile = f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"
                layout = rng.choice(bulk.layouts)
                report = self._report(msgid, mobile, rng.choice(bulk.states), now, layout)
                self._queue.append((due, report))
        return {"queued": len(self._queue), "encoding": self.encoding}


def _int(value: str | None) -> int | None:
    return int(value) if value and value.strip().isdigit() else None
