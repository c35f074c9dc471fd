"""Circuit breakers: a vendor product that refused the account is left alone for a while.

A `VendorBlocked` reply (credentials, balance, locked account, IP) opens the breaker of that
vendor product for the whole fleet (a Redis key with a TTL, so it closes by itself); while it is
open no worker calls that product, and jobs that allow it fail over to another vendor of the
channel.
"""

from __future__ import annotations

from redis import Redis

from worker.names import BREAKER_KEY_PREFIX


def breaker_key(vendor: str, channel: str) -> str:
    return f"{BREAKER_KEY_PREFIX}:{vendor}:{channel}"


def open_breaker(
    redis: Redis, *, vendor: str, channel: str, cooldown_s: float, reason: str
) -> None:
    redis.set(breaker_key(vendor, channel), reason, px=max(1, int(cooldown_s * 1000)))


def open_reason(redis: Redis, *, vendor: str, channel: str) -> str | None:
    """Why the breaker is open, or None when the product may be called."""
    value = redis.get(breaker_key(vendor, channel))
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def seconds_left(redis: Redis, *, vendor: str, channel: str) -> float:
    return max(0.0, int(redis.pttl(breaker_key(vendor, channel))) / 1000)
