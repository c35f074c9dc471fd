"""The Redis of everything that is not the broker: limits, breakers, locks, the replay guard.

HERALD_LIMITS_REDIS_URL when set, else the broker's HERALD_REDIS_URL: the keys, all named in
`worker.names`, start with `herald:`, which no key of the broker does.

Either URL may name Redis Sentinel instead of one Redis (`sentinel://host1:26379/0;...`, the
format Celery's broker reads): the client then asks the sentinels which Redis is the master
(HERALD_REDIS_SENTINEL_MASTER) on every new connection, so after a failover it reconnects to
the promoted replica by itself.
"""

from __future__ import annotations

from functools import cache
from typing import Any, cast

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool

from worker.redis_urls import is_sentinel_url, sentinel_addresses
from worker.settings import get_settings


@cache
def redis_client() -> redis.Redis:
    """redis-py's pool notices a fork and reconnects, so one client per process is safe."""
    settings = get_settings()
    return redis_from_url(settings.limits_redis_url or settings.redis_url)


def redis_from_url(url: str, **options: Any) -> redis.Redis:
    """A client of the Redis at `url`, or of the master the sentinels of a `sentinel://` URL
    name; `options` are redis-py's connection options (timeouts, retry), for the sentinels too."""
    if not is_sentinel_url(url):
        return redis.Redis.from_url(url, **options)
    addresses = sentinel_addresses(url)
    sentinel_options = {k: v for k, v in options.items() if k.startswith("socket_") or k == "retry"}
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        addresses.sentinels,
        sentinel_kwargs=sentinel_options or None,
        db=addresses.db,
        username=addresses.username,
        password=addresses.password,
        **options,
    )
    master = sentinel.master_for(get_settings().redis_sentinel_master)  # type: ignore[no-untyped-call]
    return cast(redis.Redis, master)


def redis_answers(
    url: str, *, connect_timeout_s: float = 1, timeout_s: float | None = None
) -> bool:
    """Whether a Redis answers at `url` now (through its sentinels for a `sentinel://` URL); a
    throwaway client: `herald up` asks before it starts one, a worker while it checks that it
    still consumes."""
    client = redis_from_url(
        url,
        socket_connect_timeout=connect_timeout_s,
        socket_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()
        if isinstance(client.connection_pool, SentinelConnectionPool):
            client.connection_pool.sentinel_manager.close()
