"""HTTP API: the producers' endpoints and the vendors' push callbacks.

Run it with `uvicorn worker.api:api` (or `herald up`). Pushes are stored as received, then
applied by a worker (`herald.apply_push`), so a push is never lost to a worker that is down.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

import redis
from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from worker.enums import JobStatus
from worker.errors import CallbackRejected, InvalidInput
from worker.messages import (
    MmsRequest,
    Mobile,
    PersonalisedMmsRequest,
    SmsRequest,
    VoiceRequest,
    normalise_mobile,
)
from worker.names import APPLY_PUSH_TASK, CHUANGRUI_REPORT_SEEN_KEY_PREFIX
from worker.producer import (
    Accepted,
    submit_mms,
    submit_personalised_mms,
    submit_sms,
    submit_voice,
)
from worker.redis_client import redis_client
from worker.settings import PRODUCTS, balance_threshold, get_settings, vendor_configured
from worker.store import (
    balances,
    cancel_job,
    create_tables,
    deliveries_of,
    get_job,
    inbound_messages,
    job_status,
    push_digest,
    record_push,
    session_scope,
    suppress,
    suppressions,
    unsuppress,
    utcnow,
)
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


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    await run_in_threadpool(create_tables)
    yield


api = FastAPI(
    lifespan=lifespan,
    title="herald",
    summary="Accepts SMS jobs durably and follows each recipient to its delivery report.",
    version="0.1.0",
)


@api.exception_handler(InvalidInput)
def _invalid_input(_request: Request, exc: InvalidInput) -> JSONResponse:
    detail = [
        {"loc": ["body", *field_location(p.field)], "msg": p.rule, "type": "value_error"}
        for p in exc.problems
    ]
    return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


INDEXED_PART = re.compile(r"^(\w+)\[(\d+)\]$")


def field_location(field: str) -> list[str | int]:
    """`frames[3].media.type` or `to.0` as FastAPI writes locations: `frames, 3, media, type`."""
    location: list[str | int] = []
    for part in field.split("."):
        indexed = INDEXED_PART.match(part)
        if indexed:
            location += [indexed.group(1), int(indexed.group(2))]
        else:
            location.append(int(part) if part.isdigit() else part)
    return location


class JobAccepted(BaseModel):
    id: str
    status: JobStatus


class RecipientPublic(BaseModel):
    phone: str
    status: str
    text: str | None
    vendor_status: str | None
    vendor_ref: str | None
    submitted_at: datetime | None
    reported_at: datetime | None
    last_error: str | None
    report_detail: dict[str, object] | None


class JobPublic(BaseModel):
    id: str
    channel: str
    vendor: str
    status: JobStatus
    content: str
    content_ref: str | None
    purpose: str
    created_at: datetime
    send_at: datetime | None
    expires_at: datetime | None
    recipients: list[RecipientPublic]


def accepted_response(accepted: Accepted) -> JSONResponse:
    body = JobAccepted(id=accepted.id, status=accepted.status).model_dump(mode="json")
    headers = {} if accepted.created else {"Idempotent-Replayed": "true"}
    return JSONResponse(body, status_code=status.HTTP_202_ACCEPTED, headers=headers)


@api.post(
    "/v1/sms",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobAccepted,
    responses={422: {"description": "A field breaks a rule; nothing was stored."}},
)
def post_sms(request: SmsRequest) -> JSONResponse:
    """Accept an SMS job. A repeated idempotency key answers the first job."""
    return accepted_response(submit_sms(request))


@api.post("/v1/mms", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted)
def post_mms(request: MmsRequest) -> JSONResponse:
    """Accept an MMS job; its frames are checked against the vendor's limits first."""
    return accepted_response(submit_mms(request))


@api.post("/v1/mms/personalised", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted)
def post_personalised_mms(request: PersonalisedMmsRequest) -> JSONResponse:
    """Accept a 5C personalised MMS: one picture and title, a text per number."""
    return accepted_response(submit_personalised_mms(request))


@api.post("/v1/voice", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted)
def post_voice(request: VoiceRequest) -> JSONResponse:
    """Accept a voice job: the template spoken to each number, one call each."""
    return accepted_response(submit_voice(request))


@api.get("/v1/messages/{job_id}", response_model=JobPublic)
def get_message(job_id: str) -> JobPublic:
    with session_scope() as session:
        job = get_job(session, job_id=job_id)
        if job is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no job {job_id}")
        deliveries = deliveries_of(session, job_id=job_id)
    return JobPublic(
        id=job.id,
        channel=job.channel,
        vendor=job.vendor,
        status=job_status(deliveries),
        content=job.content,
        content_ref=job.content_ref,
        purpose=job.purpose,
        created_at=job.created_at,
        send_at=job.send_at,
        expires_at=job.expires_at,
        recipients=[RecipientPublic.model_validate(d, from_attributes=True) for d in deliveries],
    )


@api.post("/v1/messages/{job_id}/cancel", response_model=JobAccepted)
def post_cancel(job_id: str) -> JobAccepted:
    """Cancel every recipient not yet handed to the vendor; 409 when none is left to cancel."""
    with session_scope() as session:
        if get_job(session, job_id=job_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no job {job_id}")
        cancelled = cancel_job(session, job_id=job_id, now=utcnow())
        current = job_status(deliveries_of(session, job_id=job_id))
    if not cancelled:
        raise HTTPException(status.HTTP_409_CONFLICT, "no recipient is left to cancel")
    return JobAccepted(id=job_id, status=current)


class SuppressionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: Mobile
    reason: str = Field("added by an operator", max_length=200)


class SuppressionPublic(BaseModel):
    phone: str
    reason: str
    created_at: datetime


@api.get("/v1/suppressions", response_model=list[SuppressionPublic])
def get_suppressions(limit: int = 1000, offset: int = 0) -> list[SuppressionPublic]:
    """Numbers that receive no marketing, oldest first."""
    with session_scope() as session:
        rows = suppressions(session, limit=min(limit, 10_000), offset=offset)
    return [SuppressionPublic.model_validate(r, from_attributes=True) for r in rows]


@api.post("/v1/suppressions", response_model=SuppressionPublic, status_code=201)
def post_suppression(body: SuppressionIn) -> SuppressionPublic:
    with session_scope() as session:
        row = suppress(session, phone=body.phone, reason=body.reason, now=utcnow())
    return SuppressionPublic.model_validate(row, from_attributes=True)


@api.delete("/v1/suppressions/{phone}", status_code=204)
def delete_suppression(phone: Annotated[str, AfterValidator(normalise_mobile)]) -> None:
    with session_scope() as session:
        if not unsuppress(session, phone=phone):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"{phone} is not suppressed")


class InboundPublic(BaseModel):
    id: int
    vendor: str
    phone: str
    content: str
    vendor_ref: str | None
    received_at: datetime | None
    stored_at: datetime


@api.get("/v1/inbound", response_model=list[InboundPublic])
def get_inbound(
    phone: Annotated[str, AfterValidator(normalise_mobile)] | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[InboundPublic]:
    """Replies and MO messages from handsets, newest first."""
    with session_scope() as session:
        rows = inbound_messages(session, phone=phone, limit=min(limit, 1000), offset=offset)
    return [InboundPublic.model_validate(r, from_attributes=True) for r in rows]


class ProductPublic(BaseModel):
    product: str
    vendor: str
    channel: str
    configured: bool
    balance: str | None
    checked_at: datetime | None
    error: str | None
    low: bool


@api.get("/v1/vendors", response_model=list[ProductPublic])
def get_vendors() -> list[ProductPublic]:
    """Each vendor product: whether it is configured, and its last known balance."""
    with session_scope() as session:
        known = balances(session)
    products = []
    for product in PRODUCTS:
        vendor, channel = product.split(":")
        row = known.get(product)
        balance = row.balance if row else None
        products.append(
            ProductPublic(
                product=product,
                vendor=vendor,
                channel=channel,
                configured=vendor_configured(vendor),
                balance=balance,
                checked_at=row.checked_at if row else None,
                error=row.error if row else None,
                low=balance is not None and Decimal(balance) < balance_threshold(product),
            )
        )
    return products


@api.get("/healthz", response_class=PlainTextResponse)
def healthz() -> str:
    return "ok"


def require_callback_token(token: str) -> None:
    expected = get_settings().callback_token
    if expected is None or not hmac.compare_digest(
        token.encode(), expected.get_secret_value().encode()
    ):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "bad callback token")


VeesingProduct = Literal["sms", "mms", "voice"]


@api.post(
    "/callbacks/veesing/{product}/{token}",
    response_class=PlainTextResponse,
    dependencies=[Depends(require_callback_token)],
)
async def veesing_push(product: VeesingProduct, request: Request) -> str:
    """A Veesing push (form-encoded): SMS receipts and replies, MMS audit results and
    receipts, voice receipts. Stored as received, then applied by a worker."""
    payload = await request_fields(request)
    await run_in_threadpool(store_and_apply_push, "veesing", product, payload)
    return "ok"


@api.api_route(
    "/callbacks/chuangrui/report", methods=["GET", "POST"], response_class=PlainTextResponse
)
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
    await run_in_threadpool(store_and_apply_push, "chuangrui", "report", payload)
    await run_in_threadpool(remember_signature, payload, settings.chuangrui_push_max_age_s)
    return "ok"


@api.api_route("/callbacks/chuangrui/mo", methods=["GET", "POST"], response_class=PlainTextResponse)
async def chuangrui_mo_push(request: Request) -> str:
    """A Chuangrui uplink (MO) push, checked against HERALD_CHUANGRUI_MO_NAME/_PWD when set."""
    payload = await request_fields(request)
    settings = get_settings()
    pwd = settings.chuangrui_mo_pwd.get_secret_value() if settings.chuangrui_mo_pwd else None
    try:
        chuangrui.verify_push_login(payload, name=settings.chuangrui_mo_name, pwd=pwd)
    except CallbackRejected as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    await run_in_threadpool(store_and_apply_push, "chuangrui", "mo", payload)
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


def store_and_apply_push(vendor: str, kind: str, payload: dict[str, str]) -> int:
    """Store the push and have a worker apply it; a vendor's retry of a stored push is a no-op."""
    with session_scope() as session:
        push, created = record_push(
            session, vendor=vendor, kind=kind, payload=payload, now=utcnow()
        )
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
