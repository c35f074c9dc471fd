"""The operators' routes: suppressions, inbound messages, vendor products (API key needed),
health (open): `/healthz` is liveness (the API runs and its store answers), `/readyz` readiness
of the whole system (worker/health.py)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, status
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import AfterValidator, ConfigDict, Field

from worker.api import examples
from worker.api.auth import require_api_key
from worker.api.deps import STORE_RETRY_AFTER_S, SessionDep
from worker.api.responses import error, errors
from worker.health import as_json, readiness
from worker.messages import Mobile, ProducerInput, normalise_mobile
from worker.schemas import InboundPublic, ProductPublic, SuppressionPublic
from worker.settings import PRODUCTS, balance_threshold, vendor_configured
from worker.store import balances, inbound_messages, suppress, suppressions, unsuppress, utcnow
from worker.store.db import store_answers

router = APIRouter(
    tags=["operators"], dependencies=[Depends(require_api_key)], responses=errors(401, 403, 503)
)
health_router = APIRouter(tags=["health"])
"""Open to anyone: what a load balancer or supervisor asks."""


class SuppressionIn(ProducerInput):
    """A number to suppress: it receives no marketing from now on."""

    model_config = ConfigDict(extra="forbid")

    phone: Mobile = Field(description="A mainland China mobile number (+86 and spaces allowed).")
    reason: str = Field(
        "added by an operator", max_length=200, description="Why, for the operators who read it."
    )


PAGE = errors(422)
"""What a route with query parameters may answer besides."""
SUPPRESSIONS_MAX_LIMIT = 10_000
INBOUND_MAX_LIMIT = 1_000
MAX_OFFSET = 1_000_000_000
"""Past any real list, and within every database's integer (a larger one answered 500)."""
SuppressionsLimit = Annotated[
    int,
    Query(
        ge=1,
        le=SUPPRESSIONS_MAX_LIMIT,
        description=f"Rows to return, 1 to {SUPPRESSIONS_MAX_LIMIT:_}.",
    ),
]
InboundLimit = Annotated[
    int,
    Query(ge=1, le=INBOUND_MAX_LIMIT, description=f"Rows to return, 1 to {INBOUND_MAX_LIMIT:_}."),
]
Offset = Annotated[
    int,
    Query(ge=0, le=MAX_OFFSET, description=f"Rows to skip for the next page, 0 to {MAX_OFFSET:_}."),
]
SuppressedPhone = Annotated[
    str, AfterValidator(normalise_mobile), Path(description="The number (+86 allowed).")
]


@router.get(
    "/v1/suppressions",
    summary="List suppressed numbers",
    response_model=list[SuppressionPublic],
    responses=PAGE,
)
def get_suppressions(
    session: SessionDep, limit: SuppressionsLimit = 1000, offset: Offset = 0
) -> list[SuppressionPublic]:
    """Numbers that receive no marketing, oldest first (at most 10,000 a page)."""
    rows = suppressions(session, limit=limit, offset=offset)
    return [SuppressionPublic.model_validate(r, from_attributes=True) for r in rows]


@router.post(
    "/v1/suppressions",
    summary="Suppress a number",
    response_model=SuppressionPublic,
    status_code=201,
    response_description="The number is suppressed (again, if it was: the first reason stays).",
    responses=errors(413, 422),
)
def post_suppression(
    body: Annotated[SuppressionIn, Body(openapi_examples=examples.SUPPRESSION)],
    session: SessionDep,
) -> SuppressionPublic:
    """Suppress a number: marketing jobs skip it, failing its recipient with the reason."""
    row = suppress(session, phone=body.phone, reason=body.reason, now=utcnow())
    return SuppressionPublic.model_validate(row, from_attributes=True)


@router.delete(
    "/v1/suppressions/{phone}",
    summary="Lift a suppression",
    status_code=204,
    response_description="The number receives marketing again.",
    responses={
        404: error("The number is not suppressed.", "13800138000 is not suppressed"),
        **errors(422),
    },
)
def delete_suppression(phone: SuppressedPhone, session: SessionDep) -> None:
    """Lift a number's suppression."""
    if not unsuppress(session, phone=phone):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{phone} is not suppressed")


@router.get(
    "/v1/inbound",
    summary="List replies and MO messages",
    response_model=list[InboundPublic],
    responses=PAGE,
)
def get_inbound(
    session: SessionDep,
    phone: Annotated[
        Annotated[str, AfterValidator(normalise_mobile)] | None,
        Query(description="Only this number's messages (+86 allowed)."),
    ] = None,
    limit: InboundLimit = 100,
    offset: Offset = 0,
) -> list[InboundPublic]:
    """Replies and MO messages from handsets, newest first (at most 1,000 a page); `phone`
    keeps one number's."""
    rows = inbound_messages(session, phone=phone, limit=limit, offset=offset)
    return [InboundPublic.model_validate(r, from_attributes=True) for r in rows]


@router.get("/v1/vendors", summary="List vendor products", response_model=list[ProductPublic])
def get_vendors(session: SessionDep) -> list[ProductPublic]:
    """Each vendor product: whether it is configured, and its last known balance."""
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


@health_router.get(
    "/healthz",
    summary="Liveness",
    response_class=PlainTextResponse,
    responses={
        200: {"content": {"text/plain": {"example": "ok"}}},
        503: {
            "description": "The job store does not answer.",
            "content": {
                "application/json": {"example": {"status": "unavailable", "store": "down"}}
            },
            "headers": {
                "Retry-After": {
                    "description": f"Seconds to wait ({STORE_RETRY_AFTER_S}).",
                    "schema": {"type": "integer"},
                }
            },
        },
    },
)
def healthz() -> Response:
    """`ok` while the job store answers `SELECT 1`; 503 while it does not, since the API can
    then accept nothing."""
    if not store_answers():
        return JSONResponse(
            {"status": "unavailable", "store": "down"},
            status_code=503,
            headers={"Retry-After": str(STORE_RETRY_AFTER_S)},
        )
    return PlainTextResponse("ok")


READY_CHECKS = {
    "store": {"ok": True, "detail": "answers"},
    "redis": {"ok": True, "detail": "answers"},
    "worker": {"ok": True, "detail": "1 consumed within 4 s"},
    "beat": {"ok": True, "detail": "ticked 1 s ago"},
}
READY_EXAMPLE = {"status": "ready", "checks": READY_CHECKS}
UNREADY_EXAMPLE = {
    "status": "unready",
    "checks": {**READY_CHECKS, "beat": {"ok": False, "detail": "no tick in the last 60 s"}},
}


@health_router.get(
    "/readyz",
    summary="Readiness",
    responses={
        200: {
            "description": "The store and Redis answer, a worker consumes and beat ticks.",
            "content": {"application/json": {"example": READY_EXAMPLE}},
        },
        503: {
            "description": "At least one check failed; each check says why.",
            "content": {"application/json": {"example": UNREADY_EXAMPLE}},
        },
    },
)
def readyz() -> JSONResponse:
    """Whether the system can deliver now: the store and Redis answer, a worker consumed its
    liveness probe within HERALD_READY_WORKER_S, and beat ticked within HERALD_READY_BEAT_S
    (worker/health.py); 503 when a check fails."""
    body = as_json(readiness())
    return JSONResponse(body, status_code=200 if body["status"] == "ready" else 503)
