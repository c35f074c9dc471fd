"""Unit tests of the workers' release of due recipients (worker/due_release.py): once per
interval across the fleet, and what falls due is queued and its job enqueued."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import col, select

from schedules import build_schedule
from worker import due_release
from worker.enums import DeliveryStatus
from worker.names import RELEASE_DUE_LOCK_KEY
from worker.redis_client import redis_client
from worker.settings import get_settings
from worker.store import Delivery, move_deliveries, session_scope, utcnow

pytestmark = pytest.mark.usefixtures("store_url", "redis_url")


def test_one_worker_of_the_fleet_releases_in_an_interval() -> None:
    redis_client().delete(RELEASE_DUE_LOCK_KEY)
    assert due_release.our_turn(5.0)
    assert not due_release.our_turn(5.0)


def test_beat_releases_only_as_a_safety_net() -> None:
    settings = get_settings()
    entry = build_schedule(settings)["release-due-sends"]
    assert entry["schedule"] == settings.release_safety_net_s


def test_a_due_deferred_recipient_is_queued_and_its_job_enqueued(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from worker.producer import submit_sms

    enqueued: list[str] = []

    def enqueue_send(job_id: str, *, runs: int = 1) -> None:
        enqueued.extend([job_id] * runs)

    monkeypatch.setattr("worker.producer.enqueue_send", enqueue_send)
    job_id = submit_sms(to=["13800138000"], content="【Herald】您好").id
    with session_scope() as session:
        move_deliveries(
            session,
            where=col(Delivery.job_id) == job_id,
            from_statuses=[DeliveryStatus.QUEUED],
            to=DeliveryStatus.DEFERRED,
            now=utcnow(),
            not_before=utcnow() - timedelta(seconds=1),
        )
    monkeypatch.setattr(due_release, "enqueue_send", enqueue_send)
    enqueued.clear()
    redis_client().delete(RELEASE_DUE_LOCK_KEY)

    due_release.DueReleaseLoop(5.0).tick()

    assert enqueued == [job_id]
    with session_scope() as session:
        statuses = session.exec(select(Delivery.status).where(col(Delivery.job_id) == job_id))
        assert list(statuses) == [DeliveryStatus.QUEUED]
