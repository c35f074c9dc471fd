"""Unit tests of what herald does while the job store cannot be reached.

The PostgreSQL store is reached through a TCP proxy that a test switches off (connections
refused, open ones cut) and on again; the settle retry is tested on both stores with a session
that fails a few times.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import timedelta
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from celery.exceptions import Retry
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

import tasks.send
import tasks.settle
from tasks.senders import Sender
from tests.conftest import REDIS, make_postgres_database
from tests.support import SettingsEnv
from tests.tcp_proxy import TcpProxy
from worker.api import api
from worker.enums import Channel, DeliveryStatus
from worker.errors import StoreUnavailable
from worker.redis_client import redis_client
from worker.settings import get_settings
from worker.store import (
    Delivery,
    Job,
    NewJob,
    claim_for_sending,
    create_job,
    deliveries_of,
    events_of,
    make_engine,
    mark_sending,
    migrate,
    reset_engine,
    session_scope,
    utcnow,
)

pytestmark = pytest.mark.usefixtures("redis_url")
GOOD = {"to": ["13800138000"], "content": "【Herald】您好"}
LIMITS_DB = 13


@pytest.fixture
def fresh_limits(settings_env: SettingsEnv) -> Iterator[None]:
    url = REDIS.url(LIMITS_DB)
    settings_env.setenv("HERALD_LIMITS_REDIS_URL", url)
    redis_client.cache_clear()
    redis.Redis.from_url(url).flushdb()
    yield
    redis_client.cache_clear()


@pytest.fixture
def direct_url(settings_env: SettingsEnv) -> Iterator[str]:
    """A new PostgreSQL store, migrated; the settings are pointed at it by `proxy`."""
    url, drop = make_postgres_database()
    migrate.upgrade(url)
    yield url
    reset_engine()
    drop()


@pytest.fixture
def proxy(direct_url: str, settings_env: SettingsEnv) -> Iterator[TcpProxy]:
    """The store as herald sees it: behind a proxy the test can switch off."""
    target = sa.engine.make_url(direct_url)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432).start()
    proxied = target.set(host="127.0.0.1", port=proxy.port)
    settings_env.setenv("HERALD_DATABASE_URL", proxied.render_as_string(hide_password=False))
    reset_engine()
    yield proxy
    reset_engine()
    proxy.stop()


def count_jobs(url: str) -> int:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return session.exec(select(func.count()).select_from(Job)).one()
    finally:
        engine.dispose()


def test_while_the_store_refuses_connections_the_api_answers_503_and_stores_nothing(
    proxy: TcpProxy, direct_url: str
) -> None:
    with TestClient(api) as client:
        before = client.post("/v1/sms", json=GOOD)
        proxy.stop()

        refused = client.post("/v1/sms", json={**GOOD, "to": ["13900139000"]})
        read = client.get(f"/v1/messages/{before.json()['id']}")
        health = client.get("/healthz")

        assert before.status_code == 202
        for answer in (refused, read):
            assert answer.status_code == 503, answer.text
            assert int(answer.headers["Retry-After"]) > 0
            assert "unavailable" in answer.json()["detail"]
            assert str(proxy.port) not in answer.text
            assert "postgres" not in answer.text.lower()
        assert (health.status_code, health.json()) == (
            503,
            {"status": "unavailable", "store": "down"},
        )
        assert count_jobs(direct_url) == 1

        proxy.start()
        again = client.post("/v1/sms", json={**GOOD, "to": ["13900139000"]})

        assert again.status_code == 202
        assert (client.get("/healthz").status_code, client.get("/healthz").text) == (200, "ok")
        assert count_jobs(direct_url) == 2


class AcceptingVendor:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, batch: Sequence[Delivery]) -> str:
        self.calls.append([d.phone for d in batch])
        return f"REF-{len(self.calls)}"


@pytest.fixture
def vendor(monkeypatch: pytest.MonkeyPatch) -> AcceptingVendor:
    fake = AcceptingVendor()
    monkeypatch.setattr(
        tasks.send, "sender_for", lambda _job, _vendor: Sender(get_settings().batch_size, fake)
    )
    return fake


def stored_job(phones: list[str] | None = None) -> str:
    new = NewJob(
        channel=Channel.SMS,
        vendor="veesing",
        content="【Herald】您好",
        phones=phones or ["13800138000", "13900139000"],
    )
    with session_scope() as session:
        job, _ = create_job(session, new=new, now=utcnow())
        return job.id


def deliveries(job_id: str) -> list[Delivery]:
    with session_scope() as session:
        return deliveries_of(session, job_id=job_id)


@pytest.mark.usefixtures("fresh_limits")
def test_the_send_task_retries_itself_shortly_while_the_store_is_unreachable(
    proxy: TcpProxy, vendor: AcceptingVendor, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = stored_job()
    countdowns: list[float] = []

    def retry(**options: Any) -> Retry:
        countdowns.append(options["countdown"])
        raise Retry("retry", when=options["countdown"])

    monkeypatch.setattr(tasks.send.send_job, "retry", retry)
    proxy.stop()

    with pytest.raises(Retry):
        tasks.send.send_job(job_id)

    assert len(countdowns) == 1
    assert 0 < countdowns[0] < get_settings().visibility_timeout_s / 10
    assert vendor.calls == []
    proxy.start()
    tasks.send.send_job(job_id)
    assert {d.status for d in deliveries(job_id)} == {DeliveryStatus.SUBMITTED}


def failing_first(times: int) -> tuple[Callable[[], AbstractContextManager[Session]], list[int]]:
    """A `session_scope` whose first `times` uses fail as an unreachable store does."""
    calls = [0]

    @contextmanager
    def flaky() -> Iterator[Session]:
        calls[0] += 1
        if calls[0] <= times:
            raise StoreUnavailable("the job store is unreachable (OperationalError)")
        with session_scope() as session:
            yield session

    return flaky, calls


@pytest.mark.usefixtures("store_url", "fresh_limits")
def test_an_outcome_is_recorded_once_through_a_short_outage_after_the_vendor_call(
    vendor: AcceptingVendor, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = stored_job()
    flaky, calls = failing_first(3)
    monkeypatch.setattr(tasks.settle, "session_scope", flaky)
    monkeypatch.setattr(tasks.settle, "sleep", lambda _s: None)

    tasks.send.deliver_job(job_id)

    assert calls[0] == 4
    assert len(vendor.calls) == 1
    assert [(d.status, d.vendor_ref) for d in deliveries(job_id)] == [
        (DeliveryStatus.SUBMITTED, "REF-1")
    ] * 2
    with session_scope() as session:
        for delivery in deliveries(job_id):
            assert delivery.id is not None
            events = events_of(session, delivery_ids=[delivery.id])
            assert [(e.from_status, e.to_status) for e in events] == [
                ("queued", "claimed"),
                ("claimed", "sending"),
                ("sending", "submitted"),
            ]


def sending_batch(job_id: str) -> tuple[Job, list[Delivery]]:
    with session_scope() as session:
        claimed_at = utcnow()
        batch = claim_for_sending(
            session, job_id=job_id, vendor="veesing", now=claimed_at, limit=10
        )
        mark_sending(session, delivery_ids=[d.id for d in batch], now=claimed_at)
        job = session.get(Job, job_id)
        assert job is not None
        return job, batch


@pytest.mark.usefixtures("store_url")
def test_the_outcome_retry_stops_before_the_sweeper_would_presume_the_call_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job, batch = sending_batch(stored_job())
    flaky, calls = failing_first(1000)
    monkeypatch.setattr(tasks.settle, "session_scope", flaky)
    monkeypatch.setattr(tasks.settle, "sleep", lambda _s: None)
    long_ago = utcnow() - timedelta(seconds=get_settings().sending_timeout_s + 1)

    with pytest.raises(StoreUnavailable):
        tasks.settle.settle_durably(
            job, "veesing", batch, tasks.settle.Accepted("REF"), sending_since=long_ago
        )

    assert calls[0] == 1
    assert {d.status for d in deliveries(job.id)} == {DeliveryStatus.SENDING}


@pytest.mark.usefixtures("store_url")
def test_the_outcome_retry_gives_up_after_the_store_retry_setting(
    monkeypatch: pytest.MonkeyPatch, settings_env: SettingsEnv
) -> None:
    settings_env.setenv("HERALD_STORE_RETRY_S", "2")
    job, batch = sending_batch(stored_job())
    flaky, calls = failing_first(1000)
    slept: list[float] = []
    clock = [1000.0]

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(tasks.settle, "session_scope", flaky)
    monkeypatch.setattr(tasks.settle, "sleep", sleep)
    monkeypatch.setattr(tasks.settle, "monotonic", lambda: clock[0])

    with pytest.raises(StoreUnavailable):
        tasks.settle.settle_durably(
            job, "veesing", batch, tasks.settle.Accepted("REF"), sending_since=utcnow()
        )

    assert slept == [0.5, 1.0]
    assert calls[0] == 3
