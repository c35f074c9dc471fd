"""Veesing SMS group send: `smsApi/group`, `smsApi/group/getBalance`, pushes.

A send is all-or-nothing: the first rule any phone breaks fails the whole request, and nothing is
counted or charged. An accepted send answers `taskId` (one per request) and `successCounts` (the
number of phones), charges one point per phone per 67-character segment (70 for a single one),
and after `push_delay_s` (counted from `sendTime` when that is in the future) pushes one receipt
per phone to `veesing_sms_push_url`: mobile, taskid, status (1/0), code, receivetime.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from worker.sandbox import veesing_common as v
from worker.sandbox.common import (
    has_emoji,
    is_mobile,
    parse_vendor_time,
    split_phones,
    vendor_time,
)
from worker.sandbox.config import SandboxConfig
from worker.sandbox.pushes import PushSender
from worker.sandbox.state import SandboxState

SEND_PATH = "/smsApi/group"
BALANCE_PATH = "/smsApi/group/getBalance"
ACCOUNT = "veesing_sms"
SIGNATURE = re.compile(r"^【[^【】]{1,20}】|【[^【】]{1,20}】$")
DELIVERED_CODE = "DELIVRD"
FAILED_CODES = ("MA:0001", "MK:0005", "UNDELIV")


def segments(content: str) -> int:
    """Billing parts of one SMS: 70 characters fit one, longer ones go 67 to a part."""
    return 1 if len(content) <= 70 else -(-len(content) // 67)


class VeesingSms:
    def __init__(self, config: SandboxConfig, state: SandboxState, pushes: PushSender) -> None:
        self._config = config
        self._state = state
        self._pushes = pushes
        self._last_task: dict[str, str] = {}
        state.on_reset(self._last_task.clear)

    def router(self) -> APIRouter:
        router = APIRouter()
        router.add_api_route(SEND_PATH, self.send, methods=["POST"], response_class=Response)
        router.add_api_route(BALANCE_PATH, self.balance, methods=["POST"], response_class=Response)
        return router

    async def send(self, request: Request) -> Response:
        account = self._state.accounts[ACCOUNT]
        params = await v.authorised_params(request, self._config, account)
        if isinstance(params, Response):
            return params
        content, phone_list = params.get("content", ""), params.get("phone", "")
        phones = split_phones(phone_list)
        if not content or not phones:
            return v.fail(request, v.MISSING_PARAMETER)
        now = self._state.clock.now()
        send_at = now
        if params.get("sendTime", "").strip():
            try:
                send_at = max(now, parse_vendor_time(params["sendTime"]))
            except ValueError:
                return v.fail(request, v.BAD_PARAMETER)
        if has_emoji(content):
            return v.fail(request, v.BAD_PARAMETER)
        if SIGNATURE.search(content) is None:
            return v.fail(request, v.TEMPLATE_NOT_APPROVED)
        if not all(is_mobile(phone) for phone in phones):
            return v.fail(request, v.BAD_PHONE)
        cost = segments(content) * len(phones)
        if account.balance < cost:
            return v.fail(request, v.NO_BALANCE)
        breach = self._state.limits.check(ACCOUNT, phones)
        if breach is not None:
            return v.fail(request, v.BREACH_MESSAGES[breach])
        return self._accept(request, phones, content, cost, now, send_at)

    def _accept(
        self,
        request: Request,
        phones: list[str],
        content: str,
        cost: int,
        now: datetime,
        send_at: datetime,
    ) -> Response:
        account = self._state.accounts[ACCOUNT]
        task_id = v.next_task_id()
        account.balance -= cost
        self._state.limits.record(ACCOUNT, phones)
        delay_s = (send_at - now).total_seconds() + self._config.push_delay_s
        extra = {} if send_at == now else {"send_at": send_at.isoformat()}
        self._state.log_sends("veesing", "sms", task_id, [(p, content) for p in phones], **extra)
        receive_time = vendor_time(now + timedelta(seconds=delay_s))
        for phone in phones:
            self._last_task[phone] = task_id
            self._push_receipt(phone, task_id, receive_time, delay_s)
        return v.ok(
            request,
            remain_point=str(account.balance),
            task_id=task_id,
            success_counts=str(len(phones)),
            accepted=True,
        )

    def _push_receipt(self, phone: str, task_id: str, receive_time: str, delay_s: float) -> None:
        delivered = self._state.delivered(phone)
        code = DELIVERED_CODE if delivered else self._state.rng.choice(FAILED_CODES)
        receipt = {
            "mobile": phone,
            "taskid": task_id,
            "status": "1" if delivered else "0",
            "code": code,
            "receivetime": receive_time,
        }
        self._pushes.schedule(
            "veesing_sms_receipt", self._config.veesing_sms_push_url, receipt, delay_s=delay_s
        )

    async def balance(self, request: Request) -> Response:
        return await v.balance(request, self._config, self._state, ACCOUNT)

    def push_mo(self, phone: str, content: str, ref: str | None) -> dict[str, str]:
        """A user's reply: mobile, taskid (of the last send to that phone), content, time."""
        reply = {
            "mobile": phone,
            "taskid": ref if ref is not None else self._last_task.get(phone, ""),
            "content": content,
            "receivetime": vendor_time(self._state.clock.now()),
        }
        self._pushes.schedule("veesing_sms_mo", self._config.veesing_sms_push_url, reply, delay_s=0)
        return reply
