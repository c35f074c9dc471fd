"""The vendors' push callbacks: delivery reports, replies, audit results.

Pushes are stored as received, in one INSERT, and answered; the doorbell then wakes a worker
that applies stored pushes in batches (worker/push_doorbell.py), so a push is never lost to a
worker that is down, and no push costs a Celery task of its own.
"""

from __future__ import annotations

import hmac
import logging
from typing import Annotated, Any, Literal

import redis
from fastapi import APIRouter, Depends, HTTPException, Path, Request, status
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from worker.api.responses import error, errors
from worker.errors import CallbackRejected
from worker.log_redaction import MASK, RedactLogs
from worker.names import CHUANGRUI_REPORT_SEEN_KEY_PREFIX
from worker.push_doorbell import doorbell
from worker.redis_client import redis_client
from worker.settings import get_settings
from worker.store import push_digest, session_scope, utcnow
from worker.store.pushes import insert_push
from worker.vendors import chuangrui

CREDENTIAL_FIELDS = frozenset({"pwd", "password", "apikey", "appkey", "accesssecret", "token"})
"""Push fields that carry a login (Chuangrui's report and MO `pwd`): checked, never stored."""

log = logging.getLogger(__name__)

# The access log prints request paths and query strings: callback tokens, pwd, phone numbers.
logging.getLogger("uvicorn.access").addFilter(RedactLogs())


router = APIRouter(tags=["vendor callbacks"])
STORED = "Stored; the vendor need not push it again."
PUSH_ANSWERS = {200: {"content": {"text/plain": {"example": "ok"}}}, **errors(413, 503)}


def require_callback_token(
    token: Annotated[str, Path(description="The secret HERALD_CALLBACK_TOKEN.")],
) -> None:
    expected = get_settings().callback_token
    if expected is None or not hmac.compare_digest(
        token.encode(), expected.get_secret_value().encode()
    ):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "bad callback token")


VeesingProduct = Literal["sms", "mms", "voice"]


@router.post(
    "/callbacks/veesing/{product}/{token}",
    summary="Veesing push",
    response_class=PlainTextResponse,
    dependencies=[Depends(require_callback_token)],
    response_description=STORED,
    responses={
        **PUSH_ANSWERS,
        403: error(
            "The path's token is not HERALD_CALLBACK_TOKEN (or none is set); nothing was stored.",
            "bad callback token",
        ),
        **errors(422),
    },
)
async def veesing_push(
    product: Annotated[VeesingProduct, Path(description="Whose push: sms, mms or voice.")],
    request: Request,
) -> str:
    """A Veesing push (form-encoded): SMS receipts and replies, MMS audit results and
    receipts, voice receipts. Stored as received, then applied by a worker."""
    payload = await request_fields(request)
    await run_in_threadpool(store_push_and_ring, "veesing", product, payload)
    return "ok"


REPORT_ROUTE: dict[str, Any] = {
    "path": "/callbacks/chuangrui/report",
    "summary": "Chuangrui report push",
    "response_class": PlainTextResponse,
    "response_description": STORED,
    "responses": {
        **PUSH_ANSWERS,
        403: error(
            "Bad or missing signature, stale timestamp, wrong pwd, or a replay; nothing was "
            "stored.",
            "chuangrui report push replayed (its signature was seen before)",
        ),
    },
}
"""Chuangrui pushes by GET or by POST (its document shows both): one route each, so that
each has an operation id of its own in the OpenAPI."""


@router.get(**REPORT_ROUTE, operation_id="chuangrui_report_push_get")
@router.post(**REPORT_ROUTE, operation_id="chuangrui_report_push_post")
async def chuangrui_report_push(request: Request) -> str:
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
    await run_in_threadpool(store_push_and_ring, "chuangrui", "report", payload)
    await run_in_threadpool(remember_signature, payload, settings.chuangrui_push_max_age_s)
    return "ok"


MO_ROUTE: dict[str, Any] = {
    "path": "/callbacks/chuangrui/mo",
    "summary": "Chuangrui MO push",
    "response_class": PlainTextResponse,
    "response_description": STORED,
    "responses": {
        **PUSH_ANSWERS,
        403: error(
            "Wrong name or pwd, or no HERALD_CHUANGRUI_MO_PWD to check; nothing was stored.",
            "HERALD_CHUANGRUI_MO_PWD is not set (or HERALD_CHUANGRUI_MO_ALLOW_UNSIGNED=true)",
        ),
    },
}


@router.get(**MO_ROUTE, operation_id="chuangrui_mo_push_get")
@router.post(**MO_ROUTE, operation_id="chuangrui_mo_push_post")
async def chuangrui_mo_push(request: Request) -> str:
    """A Chuangrui uplink (MO) push, checked against HERALD_CHUANGRUI_MO_NAME/_PWD. Without a
    pwd to check, anyone could forge a `TD` and suppress any number: refused (403) unless
    HERALD_CHUANGRUI_MO_ALLOW_UNSIGNED says the operator accepts that."""
    payload = await request_fields(request)
    settings = get_settings()
    pwd = settings.chuangrui_mo_pwd.get_secret_value() if settings.chuangrui_mo_pwd else None
    if pwd is None and not settings.chuangrui_mo_allow_unsigned:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "HERALD_CHUANGRUI_MO_PWD is not set (or HERALD_CHUANGRUI_MO_ALLOW_UNSIGNED=true)",
        )
    try:
        chuangrui.verify_push_login(payload, name=settings.chuangrui_mo_name, pwd=pwd)
    except CallbackRejected as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    await run_in_threadpool(store_push_and_ring, "chuangrui", "mo", payload)
    return "ok"


def refuse_replay(payload: dict[str, str]) -> None:
    """A signed push stays valid for the whole freshness window: its signature seen before
    with other fields is a replay. The very same push again is the vendor retrying, and is
    answered as before (the store keeps it once)."""
    seen = push_redis().get(seen_key(payload))
    digest = push_digest("chuangrui", "report", without_credentials(payload))
    if seen is not None and seen != digest.encode():
        raise CallbackRejected("chuangrui report push replayed (its signature was seen before)")


def remember_signature(payload: dict[str, str], window_s: float) -> None:
    """Only once the push is stored: a vendor's retry of a push we failed to store must pass."""
    digest = push_digest("chuangrui", "report", without_credentials(payload))
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


def without_credentials(payload: dict[str, str]) -> dict[str, str]:
    """The push with each non-empty credential field (`pwd`, ...) replaced by `***`."""
    return {
        key: MASK if key.lower() in CREDENTIAL_FIELDS and value else value
        for key, value in payload.items()
    }


def store_push_and_ring(vendor: str, kind: str, payload: dict[str, str]) -> bool:
    """Store the push and wake the applier; whether it was new (a vendor's retry of a stored
    push is a no-op). One call in the threadpool, one INSERT, one commit: the whole cost of a
    push to the API (an unreachable store leaves as `StoreUnavailable`, answered 503).

    Committed before the bell rings: the applier must find the push it is woken for.
    Credential fields are masked first (their check is done): the store keeps no password.
    """
    payload = without_credentials(payload)
    with session_scope() as session:
        created = insert_push(session, vendor=vendor, kind=kind, payload=payload, now=utcnow())
    if created is not None:
        doorbell.ring()
    return created is not None
