"""The operators' routes: suppressions, inbound messages, vendor products, health."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import PlainTextResponse
from pydantic import AfterValidator, ConfigDict, Field

from worker.api.deps import SessionDep
from worker.messages import Mobile, ProducerInput, normalise_mobile
from worker.schemas import InboundPublic, ProductPublic, SuppressionPublic
from worker.settings import PRODUCTS, balance_threshold, vendor_configured
from worker.store import balances, inbound_messages, suppress, suppressions, unsuppress, utcnow

router = APIRouter()


class SuppressionIn(ProducerInput):
    model_config = ConfigDict(extra="forbid")

    phone: Mobile
    reason: str = Field("added by an operator", max_length=200)


SUPPRESSIONS_MAX_LIMIT = 10_000
INBOUND_MAX_LIMIT = 1_000
MAX_OFFSET = 1_000_000_000
"""Past any real list, and within every database's integer (a larger one answered 500)."""

Offset = Annotated[
    int, Query(ge=0, le=MAX_OFFSET, description=f"Rows to skip, 0 to {MAX_OFFSET:_}.")
]


@router.get("/v1/suppressions", response_model=list[SuppressionPublic])
def get_suppressions(
    session: SessionDep,
    limit: Annotated[
        int,
        Query(
            ge=1,
            le=SUPPRESSIONS_MAX_LIMIT,
            description=f"Rows to return, 1 to {SUPPRESSIONS_MAX_LIMIT:_}.",
        ),
    ] = 1000,
    offset: Offset = 0,
) -> list[SuppressionPublic]:
    """Numbers that receive no marketing, oldest first."""
    rows = suppressions(session, limit=limit, offset=offset)
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
    limit: Annotated[
        int,
        Query(
            ge=1, le=INBOUND_MAX_LIMIT, description=f"Rows to return, 1 to {INBOUND_MAX_LIMIT:_}."
        ),
    ] = 100,
    offset: Offset = 0,
) -> list[InboundPublic]:
    """Replies and MO messages from handsets, newest first."""
    rows = inbound_messages(session, phone=phone, limit=limit, offset=offset)
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


@router.get("/healthz", response_class=PlainTextResponse)
def healthz() -> str:
    return "ok"
