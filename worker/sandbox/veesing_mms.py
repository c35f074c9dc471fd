"""Veesing MMS: `mmsApi/create`, `mmsApi/send`, balance, audit and receipt pushes.

`create` checks the frame-encoded content (`seconds,type|base64,type|base64;...`: at most 15
frames, jpg/gif/mp4/mp3 media and GBK text, one text and one medium per frame, 80 KB decoded in
all) and answers the new mmsId as `taskId`. After `mms_audit_delay_s` the MMS is audited: it is
rejected ("内容不合规") when its title or a text frame contains "REJECT" (any case), approved
("审核通过") otherwise, and the result is pushed (taskId, returnStatus 1/0, message) to
`veesing_mms_push_url`. Only an approved mmsId can be sent; each phone gets a receipt push
(mobile, taskid, status, receivetime).
"""

from __future__ import annotations

import base64
import binascii
import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from worker.sandbox import veesing_common as v
from worker.sandbox.common import (
    BadEncoding,
    has_emoji,
    is_mobile,
    parse_vendor_time,
    read_params,
    split_phones,
    vendor_time,
)
from worker.sandbox.config import SandboxConfig
from worker.sandbox.pushes import PushSender
from worker.sandbox.state import SandboxState

CREATE_PATH = "/mmsApi/create"
SEND_PATH = "/mmsApi/send"
BALANCE_PATHS = ("/mmsApi/getBalance", "/mmsApi/group/getBalance")
ACCOUNT = "veesing_mms"
MAX_FRAMES = 15
MAX_BYTES = 80 * 1024
MEDIA_TYPES = frozenset({"jpg", "gif", "mp4", "mp3"})
REJECT_MARK = "REJECT"
APPROVED = "审核通过"
REJECTED = "内容不合规"


class ContentError(ValueError):
    """The MMS content does not follow the document's frame format."""


@dataclass(frozen=True)
class Frame:
    seconds: int
    text: str | None
    media: tuple[str, bytes] | None


def parse_content(content: str) -> list[Frame]:
    """Frames of `seconds,type|base64,...;...`; raises `ContentError` naming the broken rule."""
    parts = content.split(";")
    if parts and parts[-1] == "":
        parts.pop()  # the document's full format ends with ';', its example does not
    if not parts:
        raise ContentError("no frame")
    if len(parts) > MAX_FRAMES:
        raise ContentError(f"{len(parts)} frames, at most {MAX_FRAMES}")
    frames = [_parse_frame(part) for part in parts]
    size = sum(len(f.text.encode("gbk")) if f.text else 0 for f in frames)
    size += sum(len(f.media[1]) if f.media else 0 for f in frames)
    if size > MAX_BYTES:
        raise ContentError(f"{size} bytes, at most {MAX_BYTES}")
    return frames


def _parse_frame(frame: str) -> Frame:
    seconds, *files = frame.split(",")
    if not seconds.strip().isdigit() or int(seconds) < 1:
        raise ContentError(f"play time {seconds!r} is not a number of seconds")
    if not files:
        raise ContentError("a frame without a file")
    text: str | None = None
    media: tuple[str, bytes] | None = None
    for file in files:
        kind, bar, data = file.partition("|")
        if not bar:
            raise ContentError("a file without 'type|content'")
        decoded = _b64(data)
        if kind == "txt":
            if text is not None:
                raise ContentError("two texts in one frame")
            try:
                text = decoded.decode("gbk")
            except UnicodeDecodeError:
                raise ContentError("text is not GBK") from None
        elif kind in MEDIA_TYPES:
            if media is not None:
                raise ContentError("two media files in one frame")
            media = (kind, decoded)
        else:
            raise ContentError(f"file type {kind!r}")
    return Frame(int(seconds), text, media)


def _b64(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ContentError("file content is not base64") from None


@dataclass
class Mms:
    mms_id: str
    title: str
    text: str
    audited_at: datetime
    approved: bool


class VeesingMms:
    def __init__(self, config: SandboxConfig, state: SandboxState, pushes: PushSender) -> None:
        self._config = config
        self._state = state
        self._pushes = pushes
        self._ids = itertools.count(55)
        self._mms: dict[str, Mms] = {}
        state.on_reset(self._mms.clear)

    def router(self) -> APIRouter:
        router = APIRouter()
        router.add_api_route(CREATE_PATH, self.create, methods=["POST"], response_class=Response)
        router.add_api_route(SEND_PATH, self.send, methods=["POST"], response_class=Response)
        for path in BALANCE_PATHS:
            router.add_api_route(path, self.balance, methods=["POST"], response_class=Response)
        return router

    async def create(self, request: Request) -> Response:
        try:
            params = await read_params(request)
        except BadEncoding:
            return v.fail(request, v.BAD_PARAMETER)
        refused = v.account_error(params, self._config, self._state.accounts[ACCOUNT])
        if refused is not None:
            return v.fail(request, refused)
        title, content = params.get("title", ""), params.get("content", "")
        if not title or not content:
            return v.fail(request, v.MISSING_PARAMETER)
        if has_emoji(title):
            return v.fail(request, v.BAD_PARAMETER)
        try:
            frames = parse_content(content)
        except ContentError as error:
            return v.fail(request, v.BAD_PARAMETER, why=str(error))
        text = "\n".join(frame.text for frame in frames if frame.text)
        mms_id = str(next(self._ids))
        approved = REJECT_MARK not in f"{title}\n{text}".upper()
        delay_s = self._config.mms_audit_delay_s
        now = self._state.clock.now()
        self._mms[mms_id] = Mms(mms_id, title, text, now + timedelta(seconds=delay_s), approved)
        audit = {
            "taskId": mms_id,
            "returnStatus": "1" if approved else "0",
            "message": APPROVED if approved else REJECTED,
        }
        self._pushes.schedule(
            "veesing_mms_audit", self._config.veesing_mms_push_url, audit, delay_s=delay_s
        )
        return v.ok(request, task_id=mms_id)

    def _approved(self, mms_id: str) -> Mms | None:
        mms = self._mms.get(mms_id)
        if mms is None or not mms.approved or self._state.clock.now() < mms.audited_at:
            return None
        return mms

    async def send(self, request: Request) -> Response:
        account = self._state.accounts[ACCOUNT]
        params = await v.authorised_params(request, self._config, account)
        if isinstance(params, Response):
            return params
        mms_id, phones = params.get("mmsId", "").strip(), split_phones(params.get("phone", ""))
        if not mms_id or not phones:
            return v.fail(request, v.MISSING_PARAMETER)
        if not mms_id.isdigit():
            return v.fail(request, v.TEMPLATE_ID_FORMAT)
        mms = self._approved(mms_id)
        if mms is None:
            return v.fail(request, v.TEMPLATE_NOT_APPROVED)
        now = self._state.clock.now()
        send_at = now
        if params.get("sendTime", "").strip():
            try:
                send_at = max(now, parse_vendor_time(params["sendTime"]))
            except ValueError:
                return v.fail(request, v.BAD_PARAMETER)
        if not all(is_mobile(phone) for phone in phones):
            return v.fail(request, v.BAD_PHONE)
        if account.balance < len(phones):
            return v.fail(request, v.NO_BALANCE)
        task_id = v.next_task_id()
        account.balance -= len(phones)
        delay_s = (send_at - now).total_seconds() + self._config.push_delay_s
        extra = {"title": mms.title, "mms_id": mms_id}
        if send_at != now:
            extra["send_at"] = send_at.isoformat()
        self._state.log_sends("veesing", "mms", task_id, [(p, mms.text) for p in phones], **extra)
        receive_time = vendor_time(now + timedelta(seconds=delay_s))
        for phone in phones:
            receipt = {
                "mobile": phone,
                "taskid": task_id,
                "status": "1" if self._state.delivered(phone) else "0",
                "receivetime": receive_time,
            }
            self._pushes.schedule(
                "veesing_mms_receipt", self._config.veesing_mms_push_url, receipt, delay_s=delay_s
            )
        return v.ok(
            request,
            remain_point=str(account.balance),
            task_id=task_id,
            success_counts=str(len(phones)),
            accepted=True,
        )

    async def balance(self, request: Request) -> Response:
        return await v.balance(request, self._config, self._state, ACCOUNT)
