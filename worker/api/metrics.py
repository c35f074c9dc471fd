"""`GET /metrics`: Prometheus metrics, behind the operators' API key (keyless on loopback).

What the store and Redis know is read at scrape time by `StoreCollector` (one query or command
each), so it is right whichever process changed it and needs no shared state. What only the
worker sees (vendor call latency, retries: worker/metrics.py) is added from the workers'
multiprocess folder when this API shares it (same machine, or a shared volume).

Prometheus sends the key as `authorization: {credentials: <key>}` in its scrape config.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal, InvalidOperation

import redis
import sqlalchemy as sa
from fastapi import APIRouter, Depends
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlmodel import col, func, select

from worker.api.auth import require_api_key
from worker.api.responses import errors
from worker.app import QUEUES
from worker.breaker import breaker_key
from worker.enums import DeliveryStatus
from worker.health import health_redis
from worker.metrics import metrics_dir
from worker.names import FIVEC_LAST_POLL_KEY
from worker.redis_client import redis_from_url
from worker.settings import PRODUCTS, get_settings, vendor_configured
from worker.store import Delivery, VendorBalance, session_scope, utcnow
from worker.store.webhooks import webhook_backlog

log = logging.getLogger(__name__)
router = APIRouter(tags=["operators"], dependencies=[Depends(require_api_key)])
PRIORITY_SEPARATOR = "\x06\x16"
"""kombu's Redis transport keeps a queue's priority levels in lists named `<queue>` +
this + `<priority>`."""
PRIORITY_STEPS = (3, 6, 9)

DEFERRAL_RULES = (
    ("minute", "%one-message-per-minute rule%"),
    ("number_day", "%daily cap of this number%"),
    ("account_day", "%daily cap of the account%"),
    ("pacing", "%request-rate cap%"),
    ("breaker", "%is refusing the account%"),
    ("ambiguous_resend", "%HERALD_RESEND_AMBIGUOUS%"),
    ("retry", "%(attempt %"),
)
"""The deferral reasons herald writes (tasks/send.py, tasks/settle.py), by rule; first match."""


class StoreCollector(Collector):
    """Deliveries, deferrals, queues, breakers, balances and the 5C poll, read at scrape time."""

    def collect(self) -> Iterator[Metric]:
        yield from self.store_metrics()
        yield from self.webhook_metrics()
        yield from self.redis_metrics()

    def webhook_metrics(self) -> Iterator[Metric]:
        waiting = GaugeMetricFamily(
            "herald_webhook_backlog", "Status changes not yet taken by their webhook address."
        )
        oldest = GaugeMetricFamily(
            "herald_webhook_oldest_age_seconds",
            "How long the oldest of them has waited (0 when none does).",
        )
        failing = GaugeMetricFamily(
            "herald_webhook_failing_addresses", "Webhook addresses whose last POST failed."
        )
        now = utcnow()
        with session_scope() as session:
            backlog = webhook_backlog(session)
        waiting.add_metric([], backlog.waiting)
        oldest.add_metric([], age_s(backlog.oldest_at, now))
        failing.add_metric([], backlog.failing)
        yield from (waiting, oldest, failing)

    def store_metrics(self) -> Iterator[Metric]:
        deliveries = GaugeMetricFamily(
            "herald_deliveries",
            "Recipients in the store, by channel, vendor and status.",
            labels=["channel", "vendor", "status"],
        )
        deferred = GaugeMetricFamily(
            "herald_deferred", "Deferred recipients, by the rule they wait for.", labels=["rule"]
        )
        oldest = GaugeMetricFamily(
            "herald_oldest_queued_age_seconds",
            "How long the longest-queued recipient has been queued (0 when none is).",
        )
        balance = GaugeMetricFamily(
            "herald_vendor_balance",
            "Last balance read of each vendor product (the vendor's unit).",
            labels=["product"],
        )
        checked = GaugeMetricFamily(
            "herald_vendor_balance_checked_timestamp_seconds",
            "When each product's balance was last read (POSIX seconds).",
            labels=["product"],
        )
        rule = sa.case(
            *[(col(Delivery.last_error).like(p), name) for name, p in DEFERRAL_RULES],
            else_="other",
        )
        now = utcnow()
        with session_scope() as session:
            counts = session.exec(
                select(Delivery.channel, Delivery.vendor, Delivery.status, func.count()).group_by(
                    Delivery.channel, Delivery.vendor, Delivery.status
                )
            ).all()
            rules = session.exec(
                select(rule, func.count())
                .where(col(Delivery.status) == DeliveryStatus.DEFERRED)
                .group_by(rule)
            ).all()
            queued_since = session.exec(
                select(func.min(Delivery.updated_at)).where(
                    col(Delivery.status) == DeliveryStatus.QUEUED
                )
            ).one()
            balances = session.exec(select(VendorBalance)).all()
        for channel, vendor, status, count in counts:
            deliveries.add_metric([str(channel), vendor, str(status)], count)
        for name, count in rules:
            deferred.add_metric([str(name)], count)
        oldest.add_metric([], age_s(queued_since, now))
        for row in balances:
            checked.add_metric([row.product], row.checked_at.timestamp())
            amount = as_number(row.balance)
            if amount is not None:
                balance.add_metric([row.product], amount)
        yield from (deliveries, deferred, oldest, balance, checked)

    def redis_metrics(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "herald_queue_depth", "Tasks waiting in each Celery queue.", labels=["queue"]
        )
        breaker = GaugeMetricFamily(
            "herald_breaker_open",
            "1 while a vendor product's circuit breaker is open.",
            labels=["vendor", "channel"],
        )
        lag = GaugeMetricFamily(
            "herald_report_poll_lag_seconds",
            "Seconds since the last 5C report poll that answered (only when 5C is configured).",
            labels=["vendor"],
        )
        settings = get_settings()
        broker = redis_from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=2)
        client = health_redis(settings)
        try:
            for queue in QUEUES:
                names = [queue, *(f"{queue}{PRIORITY_SEPARATOR}{p}" for p in PRIORITY_STEPS)]
                depth.add_metric([queue], sum(int(broker.llen(n)) for n in names))
            for product in PRODUCTS:
                vendor, channel = product.split(":")
                is_open = bool(client.exists(breaker_key(vendor, channel)))
                breaker.add_metric([vendor, channel], 1.0 if is_open else 0.0)
            if vendor_configured("fivec"):
                last = client.get(FIVEC_LAST_POLL_KEY)
                if last is not None:
                    lag.add_metric(["fivec"], max(0.0, time.time() - float(last)))
        except redis.RedisError as exc:
            log.warning("metrics: Redis does not answer (%s)", type(exc).__name__)
            return
        finally:
            broker.close()
            client.close()
        yield from (depth, breaker, lag)


def age_s(since: datetime | None, now: datetime) -> float:
    return 0.0 if since is None else max(0.0, (now - since).total_seconds())


def as_number(balance: str | None) -> float | None:
    try:
        return None if balance is None else float(Decimal(balance))
    except InvalidOperation:
        return None


EXAMPLE = 'herald_queue_depth{queue="send"} 0.0'


def registry() -> CollectorRegistry:
    """A fresh registry per scrape: the store's figures, and the workers' when shared."""
    fresh = CollectorRegistry(auto_describe=False)
    fresh.register(StoreCollector())
    folder = metrics_dir(get_settings())
    if folder.is_dir():
        MultiProcessCollector(fresh, path=str(folder))  # type: ignore[no-untyped-call]
    return fresh


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "content": {CONTENT_TYPE_LATEST: {"example": 'herald_queue_depth{queue="send"} 0.0'}}
        },
        **errors(401, 403, 503),
    },
)
def get_metrics() -> Response:
    """Deliveries by channel, vendor and status; deferrals by rule; queue depths and the age of
    the oldest queued recipient; breaker states; balances; the 5C report-poll lag; and, when the
    workers share their metrics folder with the API, vendor call latency by vendor and outcome
    class and retries by error class."""
    return Response(generate_latest(registry()), media_type=CONTENT_TYPE_LATEST)
