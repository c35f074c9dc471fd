"""Unit tests of claims' lease: a claim a worker lost is taken back, and its old holder can no
longer send what another worker claimed since (on SQLite and on PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
import redis

import tasks.send
from tasks.limiters import limiter_for
from tasks.senders import Sender
from tests.conftest import REDIS
from tests.support import SettingsEnv
from worker.enums import Channel, DeliveryStatus
from worker.redis_client import redis_client
from worker.settings import get_settings
from worker.store import (
    Delivery,
    NewJob,
    claim_for_sending,
    create_job,
    deliveries_of,
    get_job,
    mark_sending,
    requeue_stale_claims,
    session_scope,
    utcnow,
)

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
PHONES = ["13800138000", "13900139000", "15000150000"]
LIMITS_DB = 12

pytestmark = pytest.mark.usefixtures("store_url")


def stored_job(now: datetime = NOW) -> str:
    new = NewJob(channel=Channel.SMS, vendor="veesing", content="【Herald】您好", phones=PHONES)
    with session_scope() as session:
        job, _ = create_job(session, new=new, now=now)
        return job.id


def claim(job_id: str, at: datetime) -> list[Delivery]:
    with session_scope() as session:
        return claim_for_sending(session, job_id=job_id, vendor="veesing", now=at, limit=10)


def ids(batch: Sequence[Delivery]) -> list[int]:
    return [d.id for d in batch if d.id is not None]


def statuses(job_id: str) -> list[DeliveryStatus]:
    with session_scope() as session:
        return [d.status for d in deliveries_of(session, job_id=job_id)]


def test_a_claim_past_its_lease_goes_to_another_worker_and_its_old_holder_sends_none() -> None:
    job_id = stored_job()
    first = claim(job_id, NOW)
    with session_scope() as session:
        requeued = requeue_stale_claims(session, now=NOW + timedelta(seconds=61), older_than_s=60)
    second_at = NOW + timedelta(seconds=62)
    second = claim(job_id, second_at)

    with session_scope() as session:
        stale = mark_sending(session, delivery_ids=ids(first), now=second_at, claimed_at=NOW)
    with session_scope() as session:
        current = mark_sending(
            session, delivery_ids=ids(second), now=second_at, claimed_at=second_at
        )

    assert requeued == [job_id]
    assert sorted(ids(second)) == sorted(ids(first))
    assert stale == set()
    assert current == set(ids(second))
    assert statuses(job_id) == [DeliveryStatus.SENDING] * 3


@pytest.fixture
def fresh_limits(settings_env: SettingsEnv, redis_url: str) -> Iterator[None]:
    url = REDIS.url(LIMITS_DB)
    settings_env.setenv("HERALD_LIMITS_REDIS_URL", url)
    redis_client.cache_clear()
    redis.Redis.from_url(url).flushdb()
    yield
    redis_client.cache_clear()


@pytest.mark.usefixtures("fresh_limits")
def test_a_worker_whose_claim_lapsed_calls_no_vendor_and_gives_its_numbers_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[list[str]] = []

    def vendor(batch: Sequence[Delivery]) -> str:
        calls.append([d.phone for d in batch])
        return "REF"

    monkeypatch.setattr(
        tasks.send, "sender_for", lambda _job, _vendor: Sender(get_settings().batch_size, vendor)
    )
    lapsed_at = utcnow() - timedelta(seconds=120)
    job_id = stored_job(lapsed_at)
    lapsed = claim(job_id, lapsed_at)
    with session_scope() as session:
        requeue_stale_claims(session, now=utcnow(), older_than_s=60)
    current_at = utcnow()
    current = claim(job_id, current_at)
    with session_scope() as session:
        job = get_job(session, job_id=job_id)
    assert job is not None
    limiter = limiter_for("veesing", Channel.SMS)

    made = tasks.send.send_batch(job, "veesing", limiter, lapsed, claimed_at=lapsed_at)

    assert (made, calls) == (0, [])
    assert statuses(job_id) == [DeliveryStatus.CLAIMED] * 3
    made = tasks.send.send_batch(job, "veesing", limiter, current, claimed_at=current_at)
    assert (made, calls) == (1, [PHONES])  # the numbers were given back, not held a minute
    assert statuses(job_id) == [DeliveryStatus.SUBMITTED] * 3


def test_the_sweep_takes_back_a_claim_past_the_lease_setting(
    settings_env: SettingsEnv, redis_url: str
) -> None:
    from tasks.maintenance import sweep

    settings_env.setenv("HERALD_CLAIM_LEASE_S", "5")
    job_id = stored_job()
    claim(job_id, utcnow() - timedelta(seconds=6))

    sweep()

    assert get_settings().sending_timeout_s > 6
    assert statuses(job_id) == [DeliveryStatus.QUEUED] * 3
