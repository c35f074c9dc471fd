"""Figure (7): herald's fleet-wide limiter against the `limits` library, on the same Redis, from
one process, checking the same rules for fresh numbers: one message per number per minute and
at most 10 per number per day (veesing:sms's defaults).

herald checks a batch of numbers in one Lua call (`RateLimiter.reserve`, as the send task does
through tasks/limiters.py, with a batch of `HERALD_BATCH_SIZE`); `limits` checks one number at a
time, one hit on a moving window (the minute) and one on a fixed window (the day)."""

from __future__ import annotations

import time
from datetime import datetime

import redis as redis_py
from limits import RateLimitItemPerDay, RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

from bench.figures import Figure
from bench.phones import Phones
from tests.support import RedisServer
from worker.limits import DayCounts, RateLimiter, rules_for
from worker.settings import Settings

HERALD_KEY, LIMITS_KEY, RATIO_KEY = "limiter_herald", "limiter_limits", "limiter_ratio"
LIMITS_DB = 2
SCOPE = "veesing:sms"


def nothing_sent_today(scope: str, day_start: datetime) -> DayCounts:
    """The store's answer on a fresh day: nothing sent yet."""
    return DayCounts()


def herald_numbers_per_s(url: str, phones: list[str], batch: int) -> float:
    limiter = RateLimiter(
        redis_py.Redis.from_url(url),
        scope=SCOPE,
        rules=rules_for(SCOPE, {}),
        seed=nothing_sent_today,
    )
    started = time.perf_counter()
    for start in range(0, len(phones), batch):
        reservation = limiter.reserve(phones[start : start + batch])
        if reservation.held:
            raise RuntimeError(f"herald held fresh numbers: {reservation.held[:3]}")
    return len(phones) / (time.perf_counter() - started)


def limits_numbers_per_s(url: str, phones: list[str]) -> float:
    storage = storage_from_string(url)
    minute = MovingWindowRateLimiter(storage)
    day = FixedWindowRateLimiter(storage)
    once_a_minute = RateLimitItemPerMinute(1)
    ten_a_day = RateLimitItemPerDay(10)
    started = time.perf_counter()
    for phone in phones:
        if not (minute.hit(once_a_minute, SCOPE, phone) and day.hit(ten_a_day, SCOPE, phone)):
            raise RuntimeError("limits held a fresh number")
    return len(phones) / (time.perf_counter() - started)


def measure_limiter_vs_limits(redis: RedisServer, phones: Phones, *, numbers: int) -> list[Figure]:
    url = redis.url(LIMITS_DB)
    batch = Settings(_env_file=None).batch_size
    herald = herald_numbers_per_s(url, phones.take(numbers), batch)
    library = limits_numbers_per_s(url, phones.take(numbers))
    detail = f"{numbers:,} numbers each"
    return [
        Figure(
            HERALD_KEY,
            "(7) herald's limiter, numbers/s checked",
            herald,
            "numbers/s",
            detail=f"{detail}, batches of {batch}",
        ),
        Figure(
            LIMITS_KEY,
            "(7) `limits` (moving + fixed window), numbers/s",
            library,
            "numbers/s",
            detail=detail,
        ),
        Figure(RATIO_KEY, "(7) herald's limiter ÷ `limits`", herald / library, "×"),
    ]
