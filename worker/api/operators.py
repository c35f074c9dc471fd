"""The operators' routes: suppressions, inbound messages, vendor products (API key needed),
health (open)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from worker.api.auth import require_api_key
from worker.api.deps import STORE_RETRY_AFTER_S, SessionDep
from worker.messages import Mobile, normalise_mobile
from worker.schemas import InboundPublic, ProductPublic, SuppressionPublic
from worker.settings import PRODUCTS, balance_threshold, vendor_configured
from worker.store import balances, inbound_messages, suppress, suppressions, unsuppress, utcnow
from worker.store.db import store_answers

router = APIRouter(dependencies=[Depends(require_api_key)])
health_router = APIRouter()
"""Open to anyone: what a load balancer or supervisor asks."""


class SuppressionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: Mobile
    reason: str = Field("added by an operator", max_length=200)


@router.get("/v1/suppressions", response_model=list[SuppressionPublic])
def get_suppressions(
    session: SessionDep, limit: int = 1000, offset: int = 0
) -> list[SuppressionPublic]:
    """Numbers that receive no marketing, oldest first."""
    rows = suppressions(session, limit=min(limit, 10_000), offset=offset)
    return [SuppressionPublic.model_validate(r, from_attributes=True) for r in rows]


@router.post("/v1/suppressions", response_model=SuppressionPublic, status_code=201)
def post_suppression(body: SuppressionIn, session: SessionDep) -> SuppressionPublic:
    row = suppress(session, phone=body.phone, reason=body.reason, now=utcnow())
    return SuppressionPublic.model_validate(row, from_attributes=True)


@router.delete("/v1/suppressions/{phone}", status_code=204)
def delete_suppression(
    phone: Annotated[str, AfterValidator(normalise_mobile)], session: SessionDep
) -> None:
    if not unsuppress(session, phone=phone):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{phone} is not suppressed")


@router.get("/v1/inbound", response_model=list[InboundPublic])
def get_inbound(
    session: SessionDep,
    phone: Annotated[str, AfterValidator(normalise_mobile)] | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[InboundPublic]:
    """Replies and MO messages from handsets, newest first."""
    rows = inbound_messages(session, phone=phone, limit=min(limit, 1000), offset=offset)
    return [InboundPublic.model_validate(r, from_attributes=True) for r in rows]


@router.get("/v1/vendors", response_model=list[ProductPublic])
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
    response_class=PlainTextResponse,
    responses={503: {"description": "The job store does not answer."}},
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
