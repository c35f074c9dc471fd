"""The Redis of everything that is not the broker: limits, breakers, locks, the replay guard.

HERALD_LIMITS_REDIS_URL when set, else the broker's HERALD_REDIS_URL: the keys, all named in
`worker.names`, start with `herald:`, which no key of the broker does.
"""

from __future__ import annotations

from functools import cache

import redis

from worker.settings import get_settings


@cache
def redis_client() -> redis.Redis:
    """redis-py's pool notices a fork and reconnects, so one client per process is safe."""
    settings = get_settings()
    return redis.Redis.from_url(settings.limits_redis_url or settings.redis_url)


def redis_answers(url: str, *, connect_timeout_s: float = 1) -> bool:
    """Whether a Redis answers at `url` now (a throwaway client: `herald up` asks before it
    starts one)."""
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=connect_timeout_s).ping())
    except redis.RedisError:
        return False
