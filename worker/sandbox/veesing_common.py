"""What Veesing's SMS, MMS and voice documents share: the JSON reply and the
account checks.

Every reply is the five-key object of the documents, in their key order, pretty-printed as in
their samples (without the `//` comments): success is `"returnStatus": "1 "` (with the space) and
`"message": "成功"`; a failure is `"returnStatus": "0"` with the reason in `message` and the
other three keys null.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response

from worker.sandbox.common import BadEncoding, mark, read_params
from worker.sandbox.config import SandboxConfig
from worker.sandbox.state import Account, Breach, SandboxState

MEDIA_TYPE = "application/json;charset=UTF-8"

SUCCESS = "成功"
WRONG_CREDENTIALS = "账号或密码错误"
MISSING_PARAMETER = "缺少参数"
BAD_PARAMETER = "参数错误"
TEMPLATE_NOT_APPROVED = "模板不存在或者未通过"
TEMPLATE_ID_FORMAT = "模板id格式不正确"
LOCKED = "您的账户已被锁定,请联系您的专属客服"
NO_BALANCE = "余额不足"
BAD_PHONE = "手机号码格式不正确"
NUMBER_DAILY_CAP = "该号码今日发送次数已达上限"
MINUTE_RULE = "相同手机号码一分钟之内只可发送一次"
ACCOUNT_DAILY_CAP = "当日发送量已超出最大发送限制"
UNKNOWN = "未知原因,请联系客服"
IP_LIMITED = "IP受限"

BREACH_MESSAGES = {
    Breach.ACCOUNT_DAILY: ACCOUNT_DAILY_CAP,
    Breach.NUMBER_DAILY: NUMBER_DAILY_CAP,
    Breach.MINUTE: MINUTE_RULE,
}

TASK_IDS = itertools.count(3313746)
"""Batch ids (`taskId`) of every Veesing product: unique, numeric, as strings."""


def next_task_id() -> str:
    return str(next(TASK_IDS))


def body(
    status: str,
    message: str,
    *,
    remain_point: str | None = None,
    task_id: str | None = None,
    success_counts: str | None = None,
) -> bytes:
    payload = {
        "returnStatus": status,
        "message": message,
        "remainPoint": remain_point,
        "taskId": task_id,
        "successCounts": success_counts,
    }
    return json.dumps(payload, ensure_ascii=False, indent=2).encode("utf-8")


def ok(
    request: Request,
    *,
    remain_point: str | None = None,
    task_id: str | None = None,
    success_counts: str | None = None,
    accepted: bool = False,
) -> Response:
    mark(request, "ok", accepted=accepted, detail=task_id or "")
    content = body(
        "1 ",
        SUCCESS,
        remain_point=remain_point,
        task_id=task_id,
        success_counts=success_counts,
    )
    return Response(content, media_type=MEDIA_TYPE)


def fail(request: Request | None, message: str, *, why: str = "") -> Response:
    """A documented failure; `why` adds the simulator's reason to the request log."""
    if request is not None:
        mark(request, "error", detail=f"{message}: {why}" if why else message)
    return Response(body("0", message), media_type=MEDIA_TYPE)


def fault_reply(message: str | None) -> Response:
    """The documented catch-all failure (the one a client may retry), or `message`."""
    return fail(None, message or UNKNOWN)


def account_error(params: Mapping[str, str], config: SandboxConfig, account: Account) -> str | None:
    """The documented refusal of these credentials and this account, or None."""
    app_id, app_key = params.get("appId", ""), params.get("appKey", "")
    if not app_id or not app_key:
        return MISSING_PARAMETER
    if app_id != config.veesing_app_id or app_key != config.veesing_app_key:
        return WRONG_CREDENTIALS
    if account.status != "active":
        return LOCKED
    if account.ip_blocked:
        return IP_LIMITED
    return None


async def authorised_params(
    request: Request, config: SandboxConfig, account: Account
) -> Mapping[str, str] | Response:
    """The request's parameters, or the documented refusal of its encoding, credentials or
    account (every Veesing call starts with these checks)."""
    try:
        params = await read_params(request)
    except BadEncoding:
        return fail(request, BAD_PARAMETER)
    refused = account_error(params, config, account)
    if refused is not None:
        return fail(request, refused)
    return params


async def balance(
    request: Request, config: SandboxConfig, state: SandboxState, account_name: str
) -> Response:
    """`getBalance` of any Veesing product: `remainPoint` of that product's account."""
    account = state.accounts[account_name]
    params = await authorised_params(request, config, account)
    if isinstance(params, Response):
        return params
    return ok(request, remain_point=str(account.balance))
