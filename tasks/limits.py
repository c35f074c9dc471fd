"""The fleet-wide limiter of each vendor product, wired to its Redis and to the store."""

from __future__ import annotations

from datetime import datetime
from functools import cache

import redis

from worker.enums import Channel
from worker.limits import DayCounts, RateLimiter, rules_for
from worker.settings import get_settings
from worker.store import day_counts, session_scope


@cache
def limits_redis() -> redis.Redis:
    """redis-py's pool notices a fork and reconnects, so one client per process is safe."""
    settings = get_settings()
    return redis.Redis.from_url(settings.limits_redis_url or settings.redis_url)


def limiter_for(vendor: str, channel: Channel) -> RateLimiter:
    scope = f"{vendor}:{channel.value}"
    return RateLimiter(
        limits_redis(),
        scope=scope,
        rules=rules_for(scope, get_settings().limits),
        seed=seed_from_store,
    )


def seed_from_store(scope: str, day_start: datetime) -> DayCounts:
    vendor, channel = scope.split(":", 1)
    with session_scope() as session:
        return day_counts(session, vendor=vendor, channel=Channel(channel), since=day_start)
