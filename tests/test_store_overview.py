"""The operator page's queries (worker/store/overview.py), on SQLite and on PostgreSQL: counts by
status in one GROUP BY, recipients a page at a time, today's sends per product, and deferred
recipients grouped by the rule that the send task wrote into their reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import col, select

from tasks.send import hold_back
from tasks.settle import defer_ids
from worker.enums import CapPolicy, Channel, DeliveryStatus, JobStatus
from worker.errors import RateLimited, TransientError
from worker.limits import Hold
from worker.store import (
    Delivery,
    Job,
    NewJob,
    claim_for_sending,
    create_job,
    move_deliveries,
    session_scope,
)
from worker.store.overview import (
    DeferralRule,
    deferred_by_rule,
    deferred_page,
    job_counts,
    recent_jobs,
    recipients_page,
    sent_since,
)

pytestmark = pytest.mark.usefixtures("store_url")
NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def phones(count: int, start: int = 0) -> list[str]:
    return [f"138{n:08d}" for n in range(start, start + count)]


def stored_job(count: int, *, created: datetime = NOW, **extra: object) -> str:
    fields: dict[str, object] = {
        "channel": Channel.SMS,
        "vendor": "veesing",
        "content": "【Herald】您好",
        "phones": phones(count),
        **extra,
    }
    with session_scope() as session:
        job, _ = create_job(session, new=NewJob(**fields), now=created)  # type: ignore[arg-type]
        return job.id


def move_first(job_id: str, count: int, to: DeliveryStatus, **values: object) -> list[int]:
    with session_scope() as session:
        ids = list(
            session.exec(
                select(Delivery.id)
                .where(col(Delivery.job_id) == job_id, col(Delivery.status) == "queued")
                .order_by(col(Delivery.id))
                .limit(count)
            )
        )
        move_deliveries(
            session,
            where=col(Delivery.id).in_(ids),
            from_statuses=[DeliveryStatus.QUEUED],
            to=to,
            now=NOW,
            detail="test",
            **values,
        )
        return [i for i in ids if i is not None]


def test_counts_by_status_of_several_jobs_come_from_one_group_by() -> None:
    first, second, empty = stored_job(10), stored_job(3), "0" * 32
    move_first(first, 4, DeliveryStatus.FAILED, last_error="refused")
    move_first(first, 1, DeliveryStatus.CANCELLED)

    with session_scope() as session:
        counts = job_counts(session, [first, second, empty])

    assert dict(counts[first].by_status) == {
        DeliveryStatus.QUEUED: 5,
        DeliveryStatus.FAILED: 4,
        DeliveryStatus.CANCELLED: 1,
    }
    assert (counts[first].total, counts[first].final, counts[first].progress) == (10, 5, 50)
    assert counts[first].status is JobStatus.QUEUED
    assert dict(counts[second].by_status) == {DeliveryStatus.QUEUED: 3}
    assert counts[second].progress == 0
    assert counts[empty].total == 0 and counts[empty].status is None


def test_progress_is_100_only_when_every_recipient_is_final() -> None:
    job_id = stored_job(3)
    move_first(job_id, 2, DeliveryStatus.FAILED)
    with session_scope() as session:
        assert job_counts(session, [job_id])[job_id].progress == 66
    move_first(job_id, 1, DeliveryStatus.CANCELLED)
    with session_scope() as session:
        counts = job_counts(session, [job_id])[job_id]
    assert counts.progress == 100
    assert counts.status is JobStatus.COMPLETED


def test_recent_jobs_are_newest_first_and_paginated() -> None:
    ids = [stored_job(1, created=NOW + timedelta(minutes=n)) for n in range(5)]

    with session_scope() as session:
        first = [j.id for j in recent_jobs(session, limit=2)]
        third = [j.id for j in recent_jobs(session, limit=2, offset=4)]

    assert first == [ids[4], ids[3]]
    assert third == [ids[0]]


def test_recipients_come_a_page_at_a_time_in_accepted_order() -> None:
    job_id = stored_job(250)
    failed = move_first(job_id, 30, DeliveryStatus.FAILED)

    with session_scope() as session:
        page = recipients_page(session, job_id=job_id, limit=100, offset=200)
        only_failed = recipients_page(
            session, job_id=job_id, status=DeliveryStatus.FAILED, limit=100
        )

    assert [d.phone for d in page] == phones(250)[200:]
    assert [d.id for d in only_failed] == failed


def test_sends_since_count_what_each_product_took() -> None:
    sms = stored_job(5)
    other = stored_job(2, vendor="chuangrui")
    move_first(sms, 3, DeliveryStatus.SUBMITTED, submitted_at=NOW)
    move_first(sms, 1, DeliveryStatus.SUBMITTED, submitted_at=NOW - timedelta(days=1))
    move_first(other, 2, DeliveryStatus.SUBMITTED, submitted_at=NOW)

    with session_scope() as session:
        sent = sent_since(session, since=NOW - timedelta(hours=1))

    assert sent == {"veesing:sms": 3, "chuangrui:sms": 2}


def test_deferred_recipients_are_grouped_by_the_rule_the_send_task_wrote() -> None:
    job_id = stored_job(9, on_daily_cap=CapPolicy.DEFER)
    with session_scope() as session:
        job = session.get(Job, job_id)
        batch = claim_for_sending(session, job_id=job_id, vendor="veesing", now=NOW, limit=9)
    assert job is not None and len(batch) == 9
    later = datetime.now(UTC) + timedelta(minutes=1)
    hold_back(
        job,
        "veesing",
        batch,
        [
            Hold(batch[0].phone, "minute", later),
            Hold(batch[1].phone, "minute", later),
            Hold(batch[2].phone, "number_day", later),
            Hold(batch[3].phone, "account_day", later),
        ],
    )
    paced = RateLimited("veesing", "herald's request-rate cap", retry_after_s=2)
    passing = TransientError("veesing", "HTTP 503")
    with session_scope() as session:
        defer_ids(session, [batch[4].id], later, str(paced))
        defer_ids(session, [batch[5].id], later, f"{passing} (attempt 2)")
        defer_ids(session, [batch[6].id], later, "veesing is refusing the account (x); waiting")
        defer_ids(session, [batch[7].id], later, "veesing: 同一号码发送频率过快")

    with session_scope() as session:
        by_rule = deferred_by_rule(session)
        minute = deferred_page(session, rule=DeferralRule.MINUTE, limit=10)
        every = deferred_page(session, rule=None, limit=10)

    assert by_rule == {
        DeferralRule.MINUTE: 2,
        DeferralRule.DAILY_CAP: 2,
        DeferralRule.PACING: 1,
        DeferralRule.BACKOFF: 1,
        DeferralRule.BREAKER: 1,
        DeferralRule.OTHER: 1,
    }
    assert {d.delivery.phone for d in minute} == {batch[0].phone, batch[1].phone}
    assert {d.rule for d in minute} == {DeferralRule.MINUTE}
    assert len(every) == 8
    assert batch[8].id not in {d.delivery.id for d in every}
