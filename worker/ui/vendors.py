"""The vendors panel: each vendor product's balance, breaker and today's sends against its caps.

Balances and sends come from the store, breakers from Redis, caps from the settings. Redis is
asked with short timeouts and its absence shown as such: the page must open while Redis is down,
which is when an operator most needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import cache

import redis
from sqlmodel import Session

from worker.breaker import open_reason, seconds_left
from worker.clock import vendor_day_start
from worker.limits import LimitRules, rules_for
from worker.redis_client import redis_from_url
from worker.settings import PRODUCTS, balance_threshold, get_settings, vendor_configured
from worker.store import balances
from worker.store.overview import sent_since

REDIS_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Breaker:
    """A product's breaker: closed (`open` False), open with why and for how long, or unknown
    (`error` set) when Redis did not answer."""

    open: bool
    reason: str | None = None
    seconds_left: float = 0.0
    error: str | None = None


@dataclass(frozen=True)
class ProductRow:
    product: str
    configured: bool
    balance: str | None
    balance_low: bool
    balance_checked_at: datetime | None
    balance_error: str | None
    breaker: Breaker
    sent_today: int
    rules: LimitRules

    @property
    def cap_used_percent(self) -> int | None:
        cap = self.rules.per_account_daily
        if cap is None or cap <= 0:
            return None
        return min(100, self.sent_today * 100 // cap)


@cache
def breaker_redis() -> redis.Redis:
    """The limits' Redis, with timeouts short enough for a page."""
    settings = get_settings()
    return redis_from_url(
        settings.limits_redis_url or settings.redis_url,
        socket_timeout=REDIS_TIMEOUT_S,
        socket_connect_timeout=REDIS_TIMEOUT_S,
    )


def breaker_of(client: redis.Redis, product: str) -> Breaker:
    vendor, channel = product.split(":")
    try:
        reason = open_reason(client, vendor=vendor, channel=channel)
        if reason is None:
            return Breaker(open=False)
        left = seconds_left(client, vendor=vendor, channel=channel)
        return Breaker(open=True, reason=reason, seconds_left=left)
    except redis.RedisError as exc:
        return Breaker(open=False, error=f"Redis did not answer ({type(exc).__name__})")


def is_low(product: str, balance: str | None) -> bool:
    if balance is None:
        return False
    try:
        return Decimal(balance) < balance_threshold(product)
    except InvalidOperation:
        return False


def product_rows(session: Session, *, now: datetime, client: redis.Redis) -> list[ProductRow]:
    known = balances(session)
    sent = sent_since(session, since=vendor_day_start(now))
    limits = get_settings().limits
    rows = []
    for product in PRODUCTS:
        balance = known.get(product)
        rows.append(
            ProductRow(
                product=product,
                configured=vendor_configured(product.split(":")[0]),
                balance=balance.balance if balance else None,
                balance_low=is_low(product, balance.balance if balance else None),
                balance_checked_at=balance.checked_at if balance else None,
                balance_error=balance.error if balance else None,
                breaker=breaker_of(client, product),
                sent_today=sent.get(product, 0),
                rules=rules_for(product, limits),
            )
        )
    return rows
