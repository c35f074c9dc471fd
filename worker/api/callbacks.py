"""The vendors' push callbacks: delivery reports, replies, audit results.

Pushes are stored as received, then applied by a worker (`herald.apply_push`), so a push is
never lost to a worker that is down.
"""

from __future__ import annotations

import hmac
import logging
import re
from typing import Literal

import redis
from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import PlainTextResponse
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from worker.api.deps import SessionDep
from worker.errors import CallbackRejected
from worker.names import APPLY_PUSH_TASK, CHUANGRUI_REPORT_SEEN_KEY_PREFIX
from worker.redis_client import redis_client
from worker.settings import get_settings
from worker.store import push_digest, record_push, utcnow
from worker.vendors import chuangrui

CALLBACK_TOKEN_IN_PATH = re.compile(r"(/callbacks/[^/\s]+/[^/\s]+/)[^/\s?\"]+")

log = logging.getLogger(__name__)


class RedactCallbackTokens(logging.Filter):
    """Access logs print request paths; the Veesing push paths end in the callback secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                CALLBACK_TOKEN_IN_PATH.sub(r"\1***", a) if isinstance(a, str) else a
                for a in record.args
            )
        return True


logging.getLogger("uvicorn.access").addFilter(RedactCallbackTokens())


router = APIRouter()


def require_callback_token(token: str) -> None:
    expected = get_settings().callback_token
    if expected is None or not hmac.compare_digest(
        token.encode(), expected.get_secret_value().encode()
    ):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "bad callback token")


VeesingProduct = Literal["sms", "mms", "voice"]


@router.post(
    "/callbacks/veesing/{product}/{token}",
    response_class=PlainTextResponse,
    dependencies=[Depends(require_callback_token)],
)
async def veesing_push(product: VeesingProduct, request: Request, session: SessionDep) -> str:
    """A Veesing push (form-encoded): SMS receipts and replies, MMS audit results and
    receipts, voice receipts. Stored as received, then applied by a worker."""
    payload = await request_fields(request)
    await run_in_threadpool(store_and_apply_push, session, "veesing", product, payload)
    return "ok"


# A route per method: one route of two methods gives both one OpenAPI operationId.
@router.get("/callbacks/chuangrui/report", response_class=PlainTextResponse)
@router.post("/callbacks/chuangrui/report", response_class=PlainTextResponse)
async def chuangrui_report_push(request: Request, session: SessionDep) -> str:
    """A Chuangrui status report: refused (403, nothing stored) unless its MD5 signature
    matches HERALD_CHUANGRUI_ACCESS_SECRET and its timestamp is fresh."""
    payload = await request_fields(request)
    settings = get_settings()
    if settings.chuangrui_access_secret is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "HERALD_CHUANGRUI_ACCESS_SECRET is not set")
    report_pwd = settings.chuangrui_report_pwd
    try:
        chuangrui.verify_report_signature(
            payload,
            settings.chuangrui_access_secret.get_secret_value(),
            utcnow(),
            settings.chuangrui_push_max_age_s,
        )
        chuangrui.verify_push_login(
            payload, pwd=report_pwd.get_secret_value() if report_pwd else None
        )
        await run_in_threadpool(refuse_replay, payload)
    except CallbackRejected as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    await run_in_threadpool(store_and_apply_push, session, "chuangrui", "report", payload)
    await run_in_threadpool(remember_signature, payload, settings.chuangrui_push_max_age_s)
    return "ok"


@router.get("/callbacks/chuangrui/mo", response_class=PlainTextResponse)
@router.post("/callbacks/chuangrui/mo", response_class=PlainTextResponse)
async def chuangrui_mo_push(request: Request, session: SessionDep) -> str:
    """A Chuangrui uplink (MO) push, checked against HERALD_CHUANGRUI_MO_NAME/_PWD when set."""
    payload = await request_fields(request)
    settings = get_settings()
    pwd = settings.chuangrui_mo_pwd.get_secret_value() if settings.chuangrui_mo_pwd else None
    try:
        chuangrui.verify_push_login(payload, name=settings.chuangrui_mo_name, pwd=pwd)
    except CallbackRejected as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    await run_in_threadpool(store_and_apply_push, session, "chuangrui", "mo", payload)
    return "ok"


def refuse_replay(payload: dict[str, str]) -> None:
    """A signed push stays valid for the whole freshness window: its signature seen before
    with other fields is a replay. The very same push again is the vendor retrying, and is
    answered as before (the store keeps it once)."""
    seen = push_redis().get(seen_key(payload))
    if seen is not None and seen != push_digest("chuangrui", "report", payload).encode():
        raise CallbackRejected("chuangrui report push replayed (its signature was seen before)")


def remember_signature(payload: dict[str, str], window_s: float) -> None:
    """Only once the push is stored: a vendor's retry of a push we failed to store must pass."""
    digest = push_digest("chuangrui", "report", payload)
    push_redis().set(seen_key(payload), digest, px=max(1, int(2 * window_s * 1000)))


def seen_key(payload: dict[str, str]) -> str:
    return f"{CHUANGRUI_REPORT_SEEN_KEY_PREFIX}:{payload.get('name', '').strip().lower()}"


def push_redis() -> redis.Redis:
    return redis_client()


async def request_fields(request: Request) -> dict[str, str]:
    """A push's fields from its query string and its form body (the documents show both)."""
    fields = dict(request.query_params)
    if request.method == "POST":
        form = await request.form()
        fields |= {key: str(value) for key, value in form.items()}
    return fields


def store_and_apply_push(session: Session, vendor: str, kind: str, payload: dict[str, str]) -> int:
    """Store the push and have a worker apply it; a vendor's retry of a stored push is a no-op.

    Committed before the task is sent: the worker must find the push it is asked to apply.
    """
    push, created = record_push(session, vendor=vendor, kind=kind, payload=payload, now=utcnow())
    session.commit()
    push_id = push.id
    assert push_id is not None
    if not created:
        return push_id
    from worker.app import app

    try:
        app.send_task(APPLY_PUSH_TASK, args=[push_id])
    except Exception:  # the push is stored: the sweeper applies it when the broker is back
        log.warning("could not enqueue push %s; the sweeper will apply it", push_id, exc_info=True)
    return push_id
