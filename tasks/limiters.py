"""Helpers for the tasks: the fleet-wide limiter of each vendor product, wired to the Redis of
`worker.redis_client` and seeded from the store."""

from __future__ import annotations

from datetime import datetime

from worker.enums import Channel
from worker.limits import DayCounts, RateLimiter, rules_for
from worker.redis_client import redis_client
from worker.settings import get_settings
from worker.store import day_counts, session_scope


def limiter_for(vendor: str, channel: Channel) -> RateLimiter:
    scope = f"{vendor}:{channel.value}"
    return RateLimiter(
        redis_client(),
        scope=scope,
        rules=rules_for(scope, get_settings().limits),
        seed=seed_from_store,
    )


def seed_from_store(scope: str, day_start: datetime) -> DayCounts:
    vendor, channel = scope.split(":", 1)
    with session_scope() as session:
        return day_counts(session, vendor=vendor, channel=Channel(channel), since=day_start)
