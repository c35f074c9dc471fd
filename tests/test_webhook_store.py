"""The webhook dispatcher's store: the tail of delivery events, the outbox and each address's
state, on SQLite and on PostgreSQL (each test runs on both)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from worker.enums import Channel, DeliveryStatus
from worker.store import (
    Delivery,
    DeliveryEvent,
    NewJob,
    create_job,
    move_deliveries,
    session_scope,
)
from worker.store.models import WebhookEndpoint, WebhookOutboxEntry, WebhookTail
from worker.store.webhooks import (
    due_endpoints,
    lease_endpoint,
    pending_changes,
    record_delivered,
    record_failed,
    tail_events,
)

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
URL = "https://app.example/herald/status"
GAP_WAIT_S = 60.0
HOUR = timedelta(hours=1)

pytestmark = pytest.mark.usefixtures("store_url")


def stored_job(phones: list[str], callback_url: str | None) -> str:
    new = NewJob(
        channel=Channel.SMS,
        vendor="veesing",
        content="【Herald】您好",
        phones=phones,
        callback_url=callback_url,
    )
    with session_scope() as session:
        job, _ = create_job(session, new=new, now=NOW)
    return job.id


def move(job_id: str, *path: DeliveryStatus) -> None:
    """Walk every delivery of the job through `path`, one committed move at a time."""
    for source, target in itertools.pairwise(path):
        with session_scope() as session:
            move_deliveries(
                session,
                where=col(Delivery.job_id) == job_id,
                from_statuses=[source],
                to=target,
                now=NOW,
                detail=f"to {target}",
            )


def tail(now: datetime = NOW) -> int:
    """Tail until nothing new is read; how many events were copied."""
    copied = 0
    while True:
        with session_scope() as session:
            outcome = tail_events(session, now=now, limit=1000, gap_wait_s=GAP_WAIT_S)
        if outcome is None:
            continue
        copied += outcome.copied
        if outcome.read == 0:
            return copied


def endpoint_id(url: str = URL) -> int:
    with session_scope() as session:
        found = session.exec(select(WebhookEndpoint.id).where(WebhookEndpoint.url == url)).one()
    assert found is not None
    return found


def changes(url: str = URL, limit: int = 100) -> list[tuple[str, str, str]]:
    with session_scope() as session:
        _url, pending = pending_changes(session, endpoint_id=endpoint_id(url), limit=limit)
    return [(c.phone, c.previous_status, c.status) for c in pending]


SENT = (
    DeliveryStatus.QUEUED,
    DeliveryStatus.CLAIMED,
    DeliveryStatus.SENDING,
    DeliveryStatus.SUBMITTED,
    DeliveryStatus.DELIVERED,
)


def test_only_told_changes_of_jobs_with_an_address_reach_the_outbox() -> None:
    told = stored_job(["13800138000", "13900139000"], URL)
    silent = stored_job(["15000150000"], None)
    move(told, *SENT)
    move(silent, *SENT)

    assert tail() == 4

    assert changes() == [
        ("13800138000", "sending", "submitted"),
        ("13900139000", "sending", "submitted"),
        ("13800138000", "submitted", "delivered"),
        ("13900139000", "submitted", "delivered"),
    ]
    with session_scope() as session:
        assert len(session.exec(select(WebhookEndpoint)).all()) == 1


def test_a_change_to_the_same_status_is_not_told() -> None:
    job_id = stored_job(["13800138000"], URL)
    move(job_id, *SENT[:4], DeliveryStatus.UNKNOWN, DeliveryStatus.UNKNOWN)

    tail()

    assert [status for _phone, _before, status in changes()] == ["submitted", "unknown"]


def test_each_address_gets_its_own_jobs_changes() -> None:
    other = "http://10.0.0.7:9000/hook"
    move(stored_job(["13800138000"], URL), DeliveryStatus.QUEUED, DeliveryStatus.CANCELLED)
    move(stored_job(["13900139000"], other), DeliveryStatus.QUEUED, DeliveryStatus.FAILED)

    tail()

    assert changes(URL) == [("13800138000", "queued", "cancelled")]
    assert changes(other) == [("13900139000", "queued", "failed")]


def add_event(event_id: int, delivery_id: int, to: DeliveryStatus) -> None:
    """An event with a chosen id: how a transaction that commits late looks to the tail."""
    with session_scope() as session:
        session.add(
            DeliveryEvent(
                id=event_id, delivery_id=delivery_id, at=NOW, from_status="sending", to_status=to
            )
        )


def only_delivery(job_id: str) -> int:
    with session_scope() as session:
        found = session.exec(select(Delivery.id).where(Delivery.job_id == job_id)).one()
    assert found is not None
    return found


def last_event_id() -> int:
    with session_scope() as session:
        return int(session.exec(select(sa.func.max(DeliveryEvent.id))).one() or 0)


def test_an_event_that_appears_below_the_cursor_is_still_copied() -> None:
    job_id = stored_job(["13800138000"], URL)
    move(job_id, *SENT[:3])
    tail()
    delivery_id = only_delivery(job_id)
    late = last_event_id() + 1
    add_event(late + 1, delivery_id, DeliveryStatus.SUBMITTED)
    tail()
    assert changes() == [("13800138000", "sending", "submitted")]

    add_event(late, delivery_id, DeliveryStatus.UNKNOWN)  # its transaction committed last
    tail()

    assert changes() == [
        ("13800138000", "sending", "unknown"),
        ("13800138000", "sending", "submitted"),
    ]
    with session_scope() as session:
        assert session.get(WebhookTail, 1).gaps == []  # type: ignore[union-attr]


def test_an_id_that_never_appears_is_waited_for_only_so_long() -> None:
    job_id = stored_job(["13800138000"], URL)
    move(job_id, *SENT[:3])
    tail()
    add_event(last_event_id() + 3, only_delivery(job_id), DeliveryStatus.SUBMITTED)
    tail()
    with session_scope() as session:
        assert len(session.get(WebhookTail, 1).gaps) == 1  # type: ignore[union-attr]

    with session_scope() as session:
        outcome = tail_events(
            session, now=NOW + timedelta(seconds=GAP_WAIT_S + 1), limit=10, gap_wait_s=GAP_WAIT_S
        )

    assert outcome is not None and outcome.gaps_given_up == 2
    with session_scope() as session:
        assert session.get(WebhookTail, 1).gaps == []  # type: ignore[union-attr]


def test_an_address_is_leased_to_one_post_at_a_time() -> None:
    move(stored_job(["13800138000"], URL), DeliveryStatus.QUEUED, DeliveryStatus.CANCELLED)
    tail()
    endpoint = endpoint_id()
    until = NOW + timedelta(seconds=30)

    with session_scope() as session:
        assert due_endpoints(session, now=NOW, limit=10) == [endpoint]
        assert lease_endpoint(session, endpoint_id=endpoint, now=NOW, until=until)
    with session_scope() as session:
        assert not lease_endpoint(session, endpoint_id=endpoint, now=NOW, until=until)
        assert due_endpoints(session, now=NOW, limit=10) == []
        assert due_endpoints(session, now=until + timedelta(seconds=1), limit=10) == [endpoint]


def test_a_failed_post_waits_and_keeps_its_changes_until_the_retry_window_ends() -> None:
    move(stored_job(["13800138000"], URL), DeliveryStatus.QUEUED, DeliveryStatus.CANCELLED)
    tail()
    endpoint = endpoint_id()

    with session_scope() as session:
        failure = record_failed(
            session,
            endpoint_id=endpoint,
            now=NOW,
            error="HTTP 500",
            wait_s=lambda attempts: 10.0 * attempts,
            give_up_before=NOW - timedelta(hours=1),
        )
    assert (failure.attempts, failure.wait_s, failure.dropped) == (1, 10.0, 0)
    with session_scope() as session:
        assert due_endpoints(session, now=NOW + timedelta(seconds=9), limit=10) == []
        assert not lease_endpoint(
            session, endpoint_id=endpoint, now=NOW + timedelta(seconds=9), until=NOW + HOUR
        )
        assert due_endpoints(session, now=NOW + timedelta(seconds=10), limit=10) == [endpoint]
    assert len(changes()) == 1

    with session_scope() as session:
        failure = record_failed(
            session,
            endpoint_id=endpoint,
            now=NOW + timedelta(hours=2),
            error="HTTP 500",
            wait_s=lambda attempts: 10.0 * attempts,
            give_up_before=NOW + timedelta(hours=1),
        )
    assert (failure.attempts, failure.wait_s, failure.dropped) == (2, 20.0, 1)
    assert changes() == []


def test_a_delivered_post_removes_its_changes_and_clears_the_failures() -> None:
    job_id = stored_job(["13800138000", "13900139000"], URL)
    move(job_id, DeliveryStatus.QUEUED, DeliveryStatus.CANCELLED)
    tail()
    endpoint = endpoint_id()
    with session_scope() as session:
        record_failed(
            session,
            endpoint_id=endpoint,
            now=NOW,
            error="ConnectError",
            wait_s=lambda attempts: 0.0,
            give_up_before=NOW - timedelta(hours=1),
        )
    with session_scope() as session:
        _url, pending = pending_changes(session, endpoint_id=endpoint, limit=1)

    with session_scope() as session:
        record_delivered(
            session, endpoint_id=endpoint, event_ids=[c.event_id for c in pending], now=NOW
        )

    assert changes() == [("13900139000", "queued", "cancelled")]
    with session_scope() as session:
        state = session.get(WebhookEndpoint, endpoint)
        assert state is not None
        assert (state.attempts, state.failing_since, state.last_error) == (0, None, None)
        assert len(session.exec(select(WebhookOutboxEntry)).all()) == 1


def test_an_event_a_slower_transaction_commits_after_a_higher_one_is_copied(store_url: str) -> None:
    if not store_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time: its ids always commit in order")
    slow_job = stored_job(["13800138000"], URL)
    quick_job = stored_job(["13900139000"], URL)
    with session_scope() as slow:
        move_deliveries(
            slow,
            where=col(Delivery.job_id) == slow_job,
            from_statuses=[DeliveryStatus.QUEUED],
            to=DeliveryStatus.CANCELLED,
            now=NOW,
        )
        move(quick_job, DeliveryStatus.QUEUED, DeliveryStatus.CANCELLED)
        tail()
        assert changes() == [("13900139000", "queued", "cancelled")]

    tail()

    assert changes() == [
        ("13800138000", "queued", "cancelled"),
        ("13900139000", "queued", "cancelled"),
    ]
