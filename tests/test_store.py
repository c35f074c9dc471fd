"""Unit tests of the job store, on SQLite and on PostgreSQL (each test runs on both)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import col

from worker.delivery_reports import DeliveryReport
from worker.enums import Channel, DeliveryStatus, JobStatus
from worker.store import (
    Delivery,
    NewJob,
    ReportOutcome,
    apply_report,
    cancel_job,
    claim_for_sending,
    create_job,
    deliveries_of,
    events_of,
    expire_stale_sending,
    job_status,
    mark_sending,
    move_deliveries,
    release_due,
    requeue_stale_claims,
    session_scope,
    stale_queued_jobs,
)

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
PHONES = ["13800138000", "13900139000", "15000150000"]

pytestmark = pytest.mark.usefixtures("store_url")


def new_job(**overrides: object) -> NewJob:
    fields: dict[str, object] = {
        "channel": Channel.SMS,
        "vendor": "veesing",
        "content": "【Herald】您好",
        "phones": PHONES,
    }
    fields.update(overrides)
    return NewJob(**fields)  # type: ignore[arg-type]


def claim_and_send(job_id: str, limit: int = 10) -> list[int]:
    """What the send task does before its vendor call: claim, then mark sending."""
    with session_scope() as session:
        batch = claim_for_sending(session, job_id=job_id, vendor="veesing", now=NOW, limit=limit)
    with session_scope() as session:
        return sorted(mark_sending(session, delivery_ids=[d.id for d in batch], now=NOW))


def stored_job(**overrides: object) -> str:
    with session_scope() as session:
        job, _ = create_job(session, new=new_job(**overrides), now=NOW)
        return job.id


def statuses(job_id: str) -> list[DeliveryStatus]:
    with session_scope() as session:
        return [d.status for d in deliveries_of(session, job_id=job_id)]


def test_a_job_is_stored_with_one_queued_delivery_per_phone() -> None:
    job_id = stored_job()

    with session_scope() as session:
        deliveries = deliveries_of(session, job_id=job_id)
    assert [d.phone for d in deliveries] == PHONES
    assert {d.status for d in deliveries} == {DeliveryStatus.QUEUED}
    assert job_status(deliveries) is JobStatus.QUEUED


def test_times_come_back_as_aware_utc() -> None:
    job_id = stored_job(send_at=NOW + timedelta(hours=2))

    with session_scope() as session:
        deliveries = deliveries_of(session, job_id=job_id)
    assert deliveries[0].not_before == NOW + timedelta(hours=2)
    assert deliveries[0].not_before.tzinfo is not None


def test_the_same_idempotency_key_returns_the_first_job() -> None:
    first = stored_job(idempotency_key="order-42")

    with session_scope() as session:
        job, created = create_job(
            session, new=new_job(idempotency_key="order-42", phones=["13700137000"]), now=NOW
        )
    assert (job.id, created) == (first, False)
    assert len(statuses(first)) == len(PHONES)


def test_a_future_send_at_makes_the_job_scheduled_until_released() -> None:
    job_id = stored_job(send_at=NOW + timedelta(hours=2))
    assert set(statuses(job_id)) == {DeliveryStatus.SCHEDULED}

    with session_scope() as session:
        assert release_due(session, now=NOW + timedelta(hours=1)) == []
    with session_scope() as session:
        assert release_due(session, now=NOW + timedelta(hours=2)) == [job_id]
    assert set(statuses(job_id)) == {DeliveryStatus.QUEUED}


def test_a_claim_takes_at_most_limit_and_a_second_claim_gets_the_rest() -> None:
    job_id = stored_job()

    with session_scope() as session:
        first = claim_for_sending(session, job_id=job_id, vendor="veesing", now=NOW, limit=2)
    with session_scope() as session:
        second = claim_for_sending(session, job_id=job_id, vendor="veesing", now=NOW, limit=2)
    with session_scope() as session:
        third = claim_for_sending(session, job_id=job_id, vendor="veesing", now=NOW, limit=2)

    assert [len(first), len(second), len(third)] == [2, 1, 0]
    assert {d.phone for d in first + second} == set(PHONES)


def test_concurrent_claimers_never_claim_the_same_delivery_twice() -> None:
    job_id = stored_job(phones=[f"1380013{n:04d}" for n in range(40)])
    claimed: list[int] = []
    lock = threading.Lock()

    def claimer() -> None:
        while True:
            with session_scope() as session:
                batch = claim_for_sending(
                    session, job_id=job_id, vendor="veesing", now=NOW, limit=3
                )
            if not batch:
                return
            with lock:
                claimed.extend(d.id for d in batch if d.id is not None)

    threads = [threading.Thread(target=claimer) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(claimed) == 40
    assert len(set(claimed)) == 40


def test_a_move_changes_only_rows_in_an_allowed_status_and_records_each_change() -> None:
    job_id = stored_job()
    claim_and_send(job_id, limit=1)
    with session_scope() as session:
        moved = move_deliveries(
            session,
            where=col(Delivery.job_id) == job_id,
            from_statuses=[DeliveryStatus.SENDING],
            to=DeliveryStatus.SUBMITTED,
            now=NOW,
            vendor_ref="T1",
        )
    assert len(moved) == 1
    assert sorted(statuses(job_id)) == sorted(
        [DeliveryStatus.SUBMITTED, DeliveryStatus.QUEUED, DeliveryStatus.QUEUED]
    )
    with session_scope() as session:
        history = [(e.from_status, e.to_status) for e in events_of(session, delivery_ids=moved)]
    assert history == [("queued", "claimed"), ("claimed", "sending"), ("sending", "submitted")]


def submitted_job() -> str:
    job_id = stored_job()
    claim_and_send(job_id)
    with session_scope() as session:
        move_deliveries(
            session,
            where=col(Delivery.job_id) == job_id,
            from_statuses=[DeliveryStatus.SENDING],
            to=DeliveryStatus.SUBMITTED,
            now=NOW,
            vendor_ref="T100",
        )
    return job_id


def report(
    phone: str, status: DeliveryStatus = DeliveryStatus.DELIVERED, ref: str = "T100"
) -> DeliveryReport:
    return DeliveryReport("veesing", Channel.SMS, ref, phone, status, "DELIVRD", NOW)


def test_a_report_settles_its_delivery_once_and_a_repeat_changes_nothing() -> None:
    job_id = submitted_job()

    with session_scope() as session:
        first = apply_report(session, report=report(PHONES[0]), now=NOW)
    with session_scope() as session:
        again = apply_report(session, report=report(PHONES[0], DeliveryStatus.UNDELIVERED), now=NOW)

    assert (first, again) == (ReportOutcome.APPLIED, ReportOutcome.REPEATED)
    assert statuses(job_id)[0] is DeliveryStatus.DELIVERED


def test_a_later_final_report_changes_a_final_status_and_an_older_one_does_not() -> None:
    job_id = submitted_job()
    first = DeliveryReport(
        "veesing", Channel.SMS, "T100", PHONES[0], DeliveryStatus.UNDELIVERED, "UNDELIV", NOW
    )
    later = DeliveryReport(
        "veesing",
        Channel.SMS,
        "T100",
        PHONES[0],
        DeliveryStatus.DELIVERED,
        "DELIVRD",
        NOW + timedelta(1),
    )
    older = DeliveryReport(
        "veesing",
        Channel.SMS,
        "T100",
        PHONES[0],
        DeliveryStatus.UNDELIVERED,
        "EXPIRED",
        NOW - timedelta(1),
    )

    outcomes = []
    for each in (first, later, older):
        with session_scope() as session:
            outcomes.append(apply_report(session, report=each, now=NOW))

    assert outcomes == [ReportOutcome.APPLIED, ReportOutcome.APPLIED, ReportOutcome.REPEATED]
    assert statuses(job_id)[0] is DeliveryStatus.DELIVERED
    with session_scope() as session:
        delivery_id = deliveries_of(session, job_id=job_id)[0].id
        history = [e.to_status for e in events_of(session, delivery_ids=[delivery_id])]
    assert history == ["claimed", "sending", "submitted", "undelivered", "delivered"]


def test_a_report_for_an_unknown_batch_is_unmatched() -> None:
    submitted_job()

    with session_scope() as session:
        outcome = apply_report(session, report=report(PHONES[0], ref="T999"), now=NOW)

    assert outcome is ReportOutcome.UNMATCHED


def test_a_report_settles_a_delivery_whose_batch_id_was_never_stored() -> None:
    job_id = stored_job(phones=[PHONES[0]])
    claim_and_send(job_id)
    with session_scope() as session:
        expire_stale_sending(session, now=NOW + timedelta(hours=1), older_than_s=60)
    assert statuses(job_id) == [DeliveryStatus.UNKNOWN]

    with session_scope() as session:
        outcome = apply_report(session, report=report(PHONES[0], ref="T555"), now=NOW)

    assert outcome is ReportOutcome.APPLIED
    assert statuses(job_id) == [DeliveryStatus.DELIVERED]


def test_sending_for_too_long_becomes_unknown_and_never_queued_again() -> None:
    job_id = stored_job()
    claim_and_send(job_id, limit=1)

    with session_scope() as session:
        early = expire_stale_sending(session, now=NOW + timedelta(seconds=30), older_than_s=60)
    with session_scope() as session:
        late = expire_stale_sending(session, now=NOW + timedelta(seconds=61), older_than_s=60)

    assert (len(early), len(late)) == (0, 1)
    assert DeliveryStatus.UNKNOWN in statuses(job_id)


def test_a_claim_left_by_a_dead_worker_is_queued_again_but_a_send_is_not() -> None:
    job_id = stored_job()
    with session_scope() as session:
        claim_for_sending(session, job_id=job_id, vendor="veesing", now=NOW, limit=2)
    claim_and_send(job_id, limit=1)

    with session_scope() as session:
        early = requeue_stale_claims(session, now=NOW + timedelta(seconds=30), older_than_s=60)
    with session_scope() as session:
        late = requeue_stale_claims(session, now=NOW + timedelta(seconds=61), older_than_s=60)

    assert (early, late) == ([], [job_id])
    assert sorted(statuses(job_id)) == sorted(
        [DeliveryStatus.QUEUED, DeliveryStatus.QUEUED, DeliveryStatus.SENDING]
    )


def test_a_cancel_between_claim_and_send_keeps_the_recipient_from_being_sent() -> None:
    job_id = stored_job(phones=[PHONES[0]])
    with session_scope() as session:
        batch = claim_for_sending(session, job_id=job_id, vendor="veesing", now=NOW, limit=1)
    with session_scope() as session:
        cancel_job(session, job_id=job_id, now=NOW)

    with session_scope() as session:
        still_ours = mark_sending(session, delivery_ids=[d.id for d in batch], now=NOW)

    assert still_ours == set()
    assert statuses(job_id) == [DeliveryStatus.CANCELLED]


def test_queued_jobs_enqueued_long_ago_are_found_for_requeueing() -> None:
    job_id = stored_job()

    with session_scope() as session:
        fresh = stale_queued_jobs(session, now=NOW + timedelta(seconds=10), older_than_s=60)
    with session_scope() as session:
        stale = stale_queued_jobs(session, now=NOW + timedelta(seconds=61), older_than_s=60)

    assert (fresh, stale) == ([], [job_id])


def test_cancel_stops_unsent_recipients_but_not_ones_being_sent() -> None:
    job_id = stored_job()
    claim_and_send(job_id, limit=1)

    with session_scope() as session:
        cancelled = cancel_job(session, job_id=job_id, now=NOW)

    assert len(cancelled) == 2
    assert sorted(statuses(job_id)) == sorted(
        [DeliveryStatus.SENDING, DeliveryStatus.CANCELLED, DeliveryStatus.CANCELLED]
    )


@pytest.mark.parametrize(
    ("delivery_statuses", "expected"),
    [
        (["scheduled", "scheduled"], JobStatus.SCHEDULED),
        (["queued", "submitted"], JobStatus.QUEUED),
        (["claimed", "submitted"], JobStatus.QUEUED),
        (["deferred", "delivered"], JobStatus.QUEUED),
        (["submitted", "unknown", "delivered"], JobStatus.SUBMITTED),
        (["delivered", "failed", "undelivered"], JobStatus.COMPLETED),
        (["cancelled", "cancelled"], JobStatus.CANCELLED),
    ],
)
def test_a_job_status_is_derived_from_its_deliveries(
    delivery_statuses: list[str], expected: JobStatus
) -> None:
    deliveries = [
        Delivery(job_id="j", phone="p", vendor="v", status=DeliveryStatus(s))
        for s in delivery_statuses
    ]
    assert job_status(deliveries) is expected
