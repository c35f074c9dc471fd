"""Chuangrui (創瑞) SMS: send, balance, signed status-report push, MO push.

The document leaves the address to support; the sandbox serves it at `/chuangrui/sms` (GET or
POST; `type=pt` sends, `type=balance` answers the balance) and `/chuangrui/balance`.

Replies are one text line. An accepted send answers
`0, <sendid>,<invalid>,<success>,<black>,提交成功` (with the space after the first comma, as the
document's example); any other code answers `<code>,<msg>` with the document's own wording. The
balance answers `0,<balance>` or `<code>,<msg>`.

After `push_delay_s` (from `stime` when it is in the future), one status report per distinct
state is POSTed to `chuangrui_report_url`: name = MD5(AccessSecret + random + timestamp), pwd,
sendid, time, mobile (comma-joined numbers of that state), state, random, timestamp.
"""

from __future__ import annotations

import hashlib
import re
import string
from datetime import datetime, timedelta

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

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
from worker.sandbox.pushes import PushSender
from worker.sandbox.state import SandboxState

SEND_PATH = "/chuangrui/sms"
BALANCE_PATH = "/chuangrui/balance"
ACCOUNT = "chuangrui"
MAX_CONTENT = 500

SENSITIVE_CONTENT = (1, "含有敏感詞匯")
SENSITIVE_SIGN = (2, "含有敏感詞匯")
NO_NUMBER = (3, "沒有號碼")
SQL = (4, "包含sql語句")
NO_ACCOUNT = (10, "賬號不存在")
CANCELLED = (11, "賬號注銷")
DISABLED = (12, "賬號停用")
IP_REFUSED = (13, "IP鑒權失敗")
BAD_FORMAT = (14, "格式錯誤")
SYSTEM_ERROR = (-1, "系統異常")
BALANCE_NO_ACCOUNT = (10, "賬戶不存在")

SENSITIVE_WORDS = ("敏感词", "敏感詞", "SENSITIVE")
SQL_PATTERN = re.compile(
    r"\b(select\s.+\sfrom|insert\s+into|delete\s+from|drop\s+table|update\s.+\sset)\b",
    re.IGNORECASE | re.DOTALL,
)
DELIVERED = "DELIVRD"
FAILED_STATES = ("UNDELIV", "EXPIRED", "REJECTD", "UNKNOWN")
AUDIT_REJECTED = "REJECT"
RANDOM_ALPHABET = string.ascii_lowercase + string.digits


def signature(access_secret: str, random: str, timestamp: str) -> str:
    """The `name` of a status report: MD5(AccessSecret + random + timestamp), lower-case hex."""
    return hashlib.md5(f"{access_secret}{random}{timestamp}".encode()).hexdigest()


def text(request: Request, reply: str, outcome: str, *, accepted: bool = False) -> Response:
    mark(request, outcome, accepted=accepted, detail=reply)
    return PlainTextResponse(reply)


def error(request: Request, code: tuple[int, str]) -> Response:
    return text(request, f"{code[0]},{code[1]}", "error")


def fault_reply(line: str | None) -> Response:
    """`-1,系統異常`, or the given reply line."""
    return PlainTextResponse(line or f"{SYSTEM_ERROR[0]},{SYSTEM_ERROR[1]}")


class Chuangrui:
    def __init__(self, config: SandboxConfig, state: SandboxState, pushes: PushSender) -> None:
        self._config = config
        self._state = state
        self._pushes = pushes
        self._last_extno: dict[str, str] = {}
        state.on_reset(self._last_extno.clear)

    def router(self) -> APIRouter:
        router = APIRouter()
        for path in (SEND_PATH, BALANCE_PATH):
            router.add_api_route(
                path, self.handle, methods=["GET", "POST"], response_class=Response
            )
        return router

    def _account_error(self, params: dict[str, str], *, balance: bool) -> tuple[int, str] | None:
        if (
            params.get("name") != self._config.chuangrui_name
            or params.get("pwd") != self._config.chuangrui_pwd
        ):
            return BALANCE_NO_ACCOUNT if balance else NO_ACCOUNT
        account = self._state.accounts[ACCOUNT]
        if account.status == "cancelled":
            return CANCELLED
        if account.status != "active":
            return DISABLED
        if account.ip_blocked:
            return IP_REFUSED
        return None

    async def handle(self, request: Request) -> Response:
        try:
            params = await read_params(request)
        except BadEncoding:
            return error(request, BAD_FORMAT)
        is_balance = params.get("type") == "balance" or (
            request.url.path == BALANCE_PATH and not params.get("type")
        )
        refused = self._account_error(params, balance=is_balance)
        if refused is not None:
            return error(request, refused)
        if is_balance:
            return text(request, f"0,{self._state.accounts[ACCOUNT].balance}", "ok")
        if params.get("type") != "pt":
            return error(request, BAD_FORMAT)
        return self._send(request, params)

    def _send(self, request: Request, params: dict[str, str]) -> Response:
        content, sign = params.get("content", ""), params.get("sign", "")
        extno, stime = params.get("extno", "").strip(), params.get("stime", "").strip()
        if not content or len(content) > MAX_CONTENT or not sign:
            return error(request, BAD_FORMAT)
        if extno and not extno.isdigit():
            return error(request, BAD_FORMAT)
        now = self._state.clock.now()
        send_at = now
        if stime:
            try:
                send_at = max(now, parse_vendor_time(stime))
            except ValueError:
                return error(request, BAD_FORMAT)
        phones = split_phones(params.get("mobile", ""))
        if not phones:
            return error(request, NO_NUMBER)
        if any(word in content.upper() for word in SENSITIVE_WORDS):
            return error(request, SENSITIVE_CONTENT)
        if any(word in sign.upper() for word in SENSITIVE_WORDS):
            return error(request, SENSITIVE_SIGN)
        if SQL_PATTERN.search(content) or SQL_PATTERN.search(sign):
            return error(request, SQL)
        invalid: list[str] = []
        black: list[str] = []
        valid: list[str] = []
        for phone in phones:
            if not is_mobile(phone):
                invalid.append(phone)
            elif phone in self._state.blacklist:
                black.append(phone)
            else:
                valid.append(phone)
        send_id = self._send_id(now)
        self._state.accounts[ACCOUNT].balance -= len(valid)
        extra = {"sign": sign, "extno": extno}
        if send_at != now:
            extra["send_at"] = send_at.isoformat()
        self._state.log_sends("chuangrui", "sms", send_id, [(p, content) for p in valid], **extra)
        for phone in valid:
            self._last_extno[phone] = extno
        if valid:
            delay_s = (send_at - now).total_seconds() + self._config.push_delay_s
            self._push_reports(send_id, valid, content, now + timedelta(seconds=delay_s), delay_s)
        reply = f"0, {send_id},{len(invalid)},{len(valid)},{len(black)},提交成功"
        return text(request, reply, "ok", accepted=bool(valid))

    def _send_id(self, now: datetime) -> str:
        stamp = now.strftime("%Y%m%d%H%M%S") + f"{now.microsecond // 1000:03d}"
        return stamp + f"{self._state.rng.randrange(10**9):09d}"

    def _push_reports(
        self, send_id: str, phones: list[str], content: str, at: datetime, delay_s: float
    ) -> None:
        by_state: dict[str, list[str]] = {}
        rejected = AUDIT_REJECTED in content.upper()
        for phone in phones:
            if rejected:
                state = AUDIT_REJECTED
            elif self._state.delivered(phone):
                state = DELIVERED
            else:
                state = self._state.rng.choice(FAILED_STATES)
            by_state.setdefault(state, []).append(phone)
        for state, mobiles in by_state.items():
            random = "".join(self._state.rng.choices(RANDOM_ALPHABET, k=16))
            timestamp = str(int(at.timestamp()))
            report = {
                "name": signature(self._config.chuangrui_access_secret, random, timestamp),
                "pwd": self._config.chuangrui_report_pwd,
                "sendid": send_id,
                "time": vendor_time(at),
                "mobile": ",".join(mobiles),
                "state": state,
                "random": random,
                "timestamp": timestamp,
            }
            self._pushes.schedule(
                "chuangrui_report", self._config.chuangrui_report_url, report, delay_s=delay_s
            )

    def push_mo(self, items: list[tuple[str, str, str | None]]) -> dict[str, str]:
        """Users' replies (phone, content, custom extno or None = that of the last send) in one
        push: args = phone#@#content#@#time#@#extension, joined by #@@#."""
        now = vendor_time(self._state.clock.now())
        args = "#@@#".join(
            "#@#".join(
                (
                    phone,
                    content,
                    now,
                    self._config.chuangrui_system_extno
                    + (extno if extno is not None else self._last_extno.get(phone, "")),
                )
            )
            for phone, content, extno in items
        )
        mo = {
            "name": self._config.chuangrui_mo_name,
            "pwd": self._config.chuangrui_mo_pwd,
            "args": args,
        }
        self._pushes.schedule("chuangrui_mo", self._config.chuangrui_mo_url, mo, delay_s=0)
        return mo
