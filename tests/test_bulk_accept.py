"""Big jobs: deliveries written in bulk (COPY or a multi-row INSERT on PostgreSQL, executemany
on SQLite), a 100,000-recipient job accepted through the API, and a job's status counted in
the store rather than read row by row. Each test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, select

from worker.api import api
from worker.enums import Channel, DeliveryStatus, JobStatus
from worker.jobs import read_job
from worker.producer import accept, submit_sms
from worker.store import (
    Delivery,
    NewJob,
    create_job,
    deliveries_of,
    move_deliveries,
    session_scope,
    status_counts_of_jobs,
)
from worker.store.jobs import COPY_FROM_ROWS

pytestmark = pytest.mark.usefixtures("store_url", "redis_url")
NOW = datetime(2026, 11, 24, 8, 0, 0, 123456, tzinfo=UTC)
SIZES = [1, COPY_FROM_ROWS + 7]
"""One recipient (one INSERT) and a job PostgreSQL takes by COPY."""
AWKWARD_TEXTS = ["tab\there", "new\nline", "back\\slash \\N", "cr\rhere", "引号\"'与，逗号", "\\."]
"""Texts that COPY's text format must escape, or that look like its markers."""


def phones(count: int, *, start: int = 0) -> list[str]:
    return [str(13000000000 + start + n) for n in range(count)]


def stored_deliveries(job_id: str) -> list[Delivery]:
    with session_scope() as session:
        return deliveries_of(session, job_id=job_id)


@pytest.mark.parametrize("size", SIZES)
def test_every_delivery_of_a_job_to_send_now_is_stored_with_each_field(size: int) -> None:
    numbers = phones(size)
    new = NewJob(channel=Channel.SMS, vendor="chuangrui", content="【Herald】您好", phones=numbers)
    with session_scope() as session:
        job, created = create_job(session, new=new, now=NOW)

    deliveries = stored_deliveries(job.id)
    assert created
    assert [d.phone for d in deliveries] == numbers  # ids follow the request's order
    for d in deliveries:
        assert (d.job_id, d.vendor, d.channel, d.status) == (
            job.id,
            "chuangrui",
            Channel.SMS,
            DeliveryStatus.QUEUED,
        )
        assert (d.not_before, d.updated_at, d.text, d.send_alone) == (None, NOW, None, False)
        assert (d.vendor_ref, d.claimed_at, d.submitted_at, d.last_error) == (None,) * 4


@pytest.mark.parametrize("size", SIZES)
def test_a_scheduled_job_stores_each_delivery_scheduled_until_its_send_at(size: int) -> None:
    send_at = NOW + timedelta(hours=3)
    new = NewJob(
        channel=Channel.VOICE,
        vendor="veesing",
        content="1234",
        phones=phones(size),
        send_at=send_at,
    )
    with session_scope() as session:
        job, _ = create_job(session, new=new, now=NOW)

    deliveries = stored_deliveries(job.id)
    assert len(deliveries) == size
    assert {(d.status, d.not_before, d.channel) for d in deliveries} == {
        (DeliveryStatus.SCHEDULED, send_at, Channel.VOICE)
    }
    assert deliveries[0].not_before is not None
    assert deliveries[0].not_before.tzinfo is not None


@pytest.mark.parametrize("size", SIZES)
def test_each_recipient_of_a_personalised_mms_keeps_its_own_text_exactly(size: int) -> None:
    numbers = phones(size)
    texts = {p: f"{AWKWARD_TEXTS[n % len(AWKWARD_TEXTS)]} #{n}" for n, p in enumerate(numbers)}
    new = NewJob(channel=Channel.MMS, vendor="fivec", content="标题", phones=numbers, texts=texts)
    with session_scope() as session:
        job, _ = create_job(session, new=new, now=NOW)

    deliveries = stored_deliveries(job.id)
    assert {d.phone: d.text for d in deliveries} == texts
    assert {(d.vendor, d.channel) for d in deliveries} == {("fivec", Channel.MMS)}


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(api) as test_client:
        yield test_client


def test_a_job_of_100_000_numbers_is_accepted_whole_through_the_api(client: TestClient) -> None:
    """Written as `+86 130 0000 0000` (the longest usual spelling), the body still fits under
    the default HERALD_MAX_BODY_BYTES and HERALD_MAX_RECIPIENTS."""
    numbers = phones(100_000)
    spelled = [f"+86 {p[:3]} {p[3:7]} {p[7:]}" for p in numbers]

    response = client.post("/v1/sms", json={"to": spelled, "content": "【Herald】双十一"})

    assert response.status_code == 202, response.text[:500]
    assert response.json()["status"] == "queued"
    job_id = response.json()["id"]
    with session_scope() as session:
        assert status_counts_of_jobs(session, [job_id])[job_id] == {DeliveryStatus.QUEUED: 100_000}
        sample = [numbers[0], numbers[4_321], numbers[77_777], numbers[-1]]
        rows = session.exec(
            select(Delivery)
            .where(Delivery.job_id == job_id, col(Delivery.phone).in_(sample))
            .order_by(col(Delivery.id))
        ).all()
    assert [(r.phone, r.status, r.vendor) for r in rows] == [
        (p, DeliveryStatus.QUEUED, "veesing") for p in sample
    ]


def test_one_number_too_many_is_refused_and_nothing_is_stored(client: TestClient) -> None:
    response = client.post("/v1/sms", json={"to": phones(100_001), "content": "【Herald】双十一"})

    assert response.status_code == 422
    assert "at most 100000 numbers" in response.text


def test_a_repeated_idempotency_key_stores_a_big_job_once() -> None:
    size = COPY_FROM_ROWS + 7
    first = submit_sms(to=phones(size), content="【Herald】您好", idempotency_key="campaign-11")
    again = submit_sms(
        to=phones(size, start=size), content="【Herald】您好", idempotency_key="campaign-11"
    )

    assert (again.id, again.created, first.created) == (first.id, False, True)
    with session_scope() as session:
        assert status_counts_of_jobs(session, [first.id])[first.id] == {DeliveryStatus.QUEUED: size}


def test_a_replayed_key_answers_the_first_jobs_status_as_it_is_now() -> None:
    first = submit_sms(
        to=phones(3),
        content="【Herald】您好",
        send_at=NOW + timedelta(days=365 * 50),
        idempotency_key="order-9",
    )
    with session_scope() as session:
        move_deliveries(
            session,
            where=col(Delivery.job_id) == first.id,
            from_statuses=[DeliveryStatus.SCHEDULED],
            to=DeliveryStatus.CANCELLED,
            now=NOW,
        )

    again = accept(
        NewJob(
            channel=Channel.SMS,
            vendor="veesing",
            content="【Herald】您好",
            phones=phones(1),
            idempotency_key="order-9",
        )
    )

    assert first.status is JobStatus.SCHEDULED
    assert (again.id, again.created, again.status) == (first.id, False, JobStatus.CANCELLED)


def test_a_jobs_status_and_counts_come_from_one_count_by_status() -> None:
    numbers = phones(4)
    accepted = submit_sms(to=numbers, content="【Herald】您好")
    with session_scope() as session:
        move_deliveries(
            session,
            where=col(Delivery.phone).in_(numbers[:1]),
            from_statuses=[DeliveryStatus.QUEUED],
            to=DeliveryStatus.FAILED,
            now=NOW,
        )
        move_deliveries(
            session,
            where=col(Delivery.phone).in_(numbers[1:3]),
            from_statuses=[DeliveryStatus.QUEUED],
            to=DeliveryStatus.CANCELLED,
            now=NOW,
        )

    with session_scope() as session:
        counts = status_counts_of_jobs(session, [accepted.id])[accepted.id]
        public = read_job(session, job_id=accepted.id)
    assert counts == {
        DeliveryStatus.FAILED: 1,
        DeliveryStatus.CANCELLED: 2,
        DeliveryStatus.QUEUED: 1,
    }
    assert public.status is JobStatus.QUEUED
    assert [r.phone for r in public.recipients] == numbers
