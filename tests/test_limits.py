"""Unit tests of the fleet-wide limits, against the test run's own redis-server (database 15)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis

from tests.conftest import REDIS
from worker.clock import SHANGHAI, vendor_day
from worker.limits import DayCounts, LimitRules, RateLimiter

LIMITS_DB = 15


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class StoreCounts:
    """Stands in for the store's count of today's submissions."""

    def __init__(self) -> None:
        self.counts = DayCounts()
        self.asked = 0

    def __call__(self, scope: str, day_start: datetime) -> DayCounts:
        self.asked += 1
        return self.counts


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(REDIS.url(LIMITS_DB))
    connection.flushdb()
    yield connection
    connection.flushdb()


def limiter(
    client: redis.Redis, clock: Clock, seed: StoreCounts | None = None, **rules: object
) -> RateLimiter:
    return RateLimiter(
        client,
        scope="veesing:sms",
        rules=LimitRules(**rules),  # type: ignore[arg-type]
        seed=seed or StoreCounts(),
        clock=clock,
    )


NOON = datetime(2026, 11, 24, 12, 0, tzinfo=SHANGHAI)


def test_a_number_may_have_one_message_per_minute(client: redis.Redis) -> None:
    limits = limiter(client, Clock(NOON))

    first = limits.reserve(["13800138000", "13900139000"])
    second = limits.reserve(["13800138000"])

    assert first.granted == ["13800138000", "13900139000"]
    assert second.granted == []
    (hold,) = second.held
    assert hold.reason == "minute"
    assert NOON + timedelta(seconds=59) < hold.until <= NOON + timedelta(seconds=60)


def test_the_per_number_daily_cap_holds_until_the_vendors_midnight(client: redis.Redis) -> None:
    limits = limiter(client, Clock(NOON), minute_s=0.001, per_number_daily=3)

    grants = []
    for _ in range(4):
        grants.append(limits.reserve(["13800138000"]))
        client.delete("herald:limit:veesing:sms:minute:13800138000")

    assert [len(r.granted) for r in grants] == [1, 1, 1, 0]
    (hold,) = grants[3].held
    assert hold.reason == "number_day"
    assert hold.until == datetime(2026, 11, 25, 0, 0, tzinfo=SHANGHAI)


def test_the_account_daily_cap_counts_every_number(client: redis.Redis) -> None:
    limits = limiter(client, Clock(NOON), per_account_daily=2)

    reservation = limits.reserve(["13800138000", "13900139000", "15000150000"])

    assert reservation.granted == ["13800138000", "13900139000"]
    assert [h.reason for h in reservation.held] == ["account_day"]


def test_a_released_reservation_gives_the_minute_and_the_quota_back(client: redis.Redis) -> None:
    limits = limiter(client, Clock(NOON), per_number_daily=1, per_account_daily=1)
    reservation = limits.reserve(["13800138000"])

    assert limits.release(reservation, ["13800138000"]) == 1
    again = limits.reserve(["13800138000"])

    assert again.granted == ["13800138000"]


def test_releasing_twice_gives_back_only_once(client: redis.Redis) -> None:
    limits = limiter(client, Clock(NOON), per_account_daily=5)
    reservation = limits.reserve(["13800138000"])

    assert limits.release(reservation, ["13800138000"]) == 1
    assert limits.release(reservation, ["13800138000"]) == 0


def test_the_day_turns_at_midnight_in_shanghai_not_utc(client: redis.Redis) -> None:
    clock = Clock(datetime(2026, 11, 24, 23, 59, 59, tzinfo=SHANGHAI))
    limits = limiter(client, clock, minute_s=0.001, per_number_daily=1)

    before = limits.reserve(["13800138000"])
    client.delete("herald:limit:veesing:sms:minute:13800138000")
    still_today = limits.reserve(["13800138000"])
    clock.now = datetime(2026, 11, 25, 0, 0, 0, tzinfo=SHANGHAI)
    client.delete("herald:limit:veesing:sms:minute:13800138000")
    tomorrow = limits.reserve(["13800138000"])

    assert (len(before.granted), len(still_today.granted), len(tomorrow.granted)) == (1, 0, 1)
    assert vendor_day(datetime(2026, 11, 24, 16, 0, tzinfo=UTC)) == "20261125"


def test_after_redis_forgets_the_counters_are_rebuilt_from_the_store(client: redis.Redis) -> None:
    seed = StoreCounts()
    limits = limiter(client, Clock(NOON), seed, per_number_daily=3)
    limits.reserve(["13800138000"])

    client.flushdb()  # what a restart without persistence does
    seed.counts = DayCounts(
        per_number={"13800138000": 3, "13900139000": 1},
        last_sent={"13900139000": NOON - timedelta(seconds=20)},
    )
    after = limits.reserve(["13800138000", "13900139000", "15000150000"])

    assert after.granted == ["15000150000"]
    assert {h.phone: h.reason for h in after.held} == {
        "13800138000": "number_day",
        "13900139000": "minute",
    }
    assert seed.asked == 2


def test_concurrent_workers_grant_a_number_once(client: redis.Redis) -> None:
    limits = limiter(client, Clock(NOON))
    granted: list[str] = []

    def worker() -> None:
        granted.extend(limits.reserve(["13800138000"]).granted)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert granted == ["13800138000"]


def test_the_request_bucket_lets_a_burst_through_then_asks_to_wait(client: redis.Redis) -> None:
    limits = limiter(client, Clock(NOON), requests_per_second=5)

    waits = [limits.acquire_request() for _ in range(6)]

    assert waits[:5] == [0.0] * 5
    assert 0 < waits[5] <= 0.2


def test_a_confirmed_send_restarts_the_minute_from_the_vendors_answer(client: redis.Redis) -> None:
    clock = Clock(NOON)
    limits = limiter(client, clock, minute_s=60)
    reservation = limits.reserve(["13800138000"])
    client.pexpire("herald:limit:veesing:sms:minute:13800138000", 1000)

    assert limits.confirm(reservation, ["13800138000"]) == 1
    assert client.pttl("herald:limit:veesing:sms:minute:13800138000") > 59_000
