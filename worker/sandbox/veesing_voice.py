"""Veesing voice notification / voice code: `voiceApi`, balance, receipt push.

One phone per call. `templateId` must be digits (else "模板id格式不正确") and one of the approved
templates of `veesing_voice_templates` (else "模板不存在或者未通过"); a "code" template takes
`variables` of 2 to 8 digits, a "notice" template at most 50 characters without emoji (else
"参数错误"). The minute rule, the daily caps and the balance (one point per call) hold as for
SMS. The receipt push carries mobile, taskid, status, code, receivetime, talktime, remark.
"""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from worker.sandbox import veesing_common as v
from worker.sandbox.common import has_emoji, is_mobile, vendor_time
from worker.sandbox.config import SandboxConfig
from worker.sandbox.pushes import PushSender
from worker.sandbox.state import SandboxState

SEND_PATH = "/voiceApi"
BALANCE_PATHS = ("/voiceApi/getBalance", "/voiceApi/group/getBalance")
ACCOUNT = "veesing_voice"
CODE = re.compile(r"[0-9]{2,8}")
MAX_NOTICE_CHARS = 50
ANSWERED = ("1", "接收成功")
NOT_ANSWERED = ("2", "用户未接听")


class VeesingVoice:
    def __init__(self, config: SandboxConfig, state: SandboxState, pushes: PushSender) -> None:
        self._config = config
        self._state = state
        self._pushes = pushes

    def router(self) -> APIRouter:
        router = APIRouter()
        router.add_api_route(SEND_PATH, self.send, methods=["POST"], response_class=Response)
        for path in BALANCE_PATHS:
            router.add_api_route(path, self.balance, methods=["POST"], response_class=Response)
        return router

    def _variables_error(self, kind: str, variables: str) -> str | None:
        if kind == "code" and CODE.fullmatch(variables) is None:
            return "a voice code is 2 to 8 digits"
        if len(variables) > MAX_NOTICE_CHARS:
            return f"a voice notice is at most {MAX_NOTICE_CHARS} characters"
        if has_emoji(variables):
            return "emoji"
        return None

    async def send(self, request: Request) -> Response:
        account = self._state.accounts[ACCOUNT]
        params = await v.authorised_params(request, self._config, account)
        if isinstance(params, Response):
            return params
        template_id, phone = params.get("templateId", "").strip(), params.get("phone", "").strip()
        variables = params.get("variables", "")
        if not template_id or not phone or not variables:
            return v.fail(request, v.MISSING_PARAMETER)
        if not template_id.isdigit():
            return v.fail(request, v.TEMPLATE_ID_FORMAT)
        kind = self._config.veesing_voice_templates.get(template_id)
        if kind is None:
            return v.fail(request, v.TEMPLATE_NOT_APPROVED)
        if not is_mobile(phone):
            return v.fail(request, v.BAD_PHONE)
        why = self._variables_error(kind, variables)
        if why is not None:
            return v.fail(request, v.BAD_PARAMETER, why=why)
        if account.balance < 1:
            return v.fail(request, v.NO_BALANCE)
        breach = self._state.limits.check(ACCOUNT, [phone])
        if breach is not None:
            return v.fail(request, v.BREACH_MESSAGES[breach])
        task_id = v.next_task_id()
        account.balance -= 1
        self._state.limits.record(ACCOUNT, [phone])
        self._state.log_send("veesing", "voice", phone, task_id, variables, template_id=template_id)
        self._push_receipt(phone, task_id)
        return v.ok(
            request,
            remain_point=str(account.balance),
            task_id=task_id,
            success_counts="1",
            accepted=True,
        )

    def _push_receipt(self, phone: str, task_id: str) -> None:
        delivered = self._state.delivered(phone)
        code, remark = ANSWERED if delivered else NOT_ANSWERED
        delay_s = self._config.push_delay_s
        receipt = {
            "mobile": phone,
            "taskid": task_id,
            "status": "1" if delivered else "0",
            "code": code,
            "receivetime": vendor_time(self._state.clock.now() + timedelta(seconds=delay_s)),
            "talktime": str(self._state.rng.randint(5, 20)) if delivered else "0",
            "remark": remark,
        }
        self._pushes.schedule(
            "veesing_voice_receipt", self._config.veesing_voice_push_url, receipt, delay_s=delay_s
        )

    async def balance(self, request: Request) -> Response:
        return await v.balance(request, self._config, self._state, ACCOUNT)
