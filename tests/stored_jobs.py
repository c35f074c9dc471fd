"""Jobs written straight into the test's store, at chosen times and in chosen statuses, for the
tests that find and follow them (no API, no broker)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlmodel import col

from worker.enums import Channel, DeliveryStatus
from worker.store import Delivery, NewJob, create_job, move_deliveries, session_scope

T0 = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)


def phones(count: int, first: int = 0) -> list[str]:
    return [f"138{n:08d}" for n in range(first, first + count)]


def store_job(
    to: Sequence[str],
    *,
    at: datetime = T0,
    channel: Channel = Channel.SMS,
    vendor: str = "veesing",
    idempotency_key: str | None = None,
) -> str:
    """A job accepted at `at`, its recipients `queued`; returns its id."""
    new = NewJob(
        channel=channel,
        vendor=vendor,
        content="【Herald】您好",
        phones=list(to),
        idempotency_key=idempotency_key,
    )
    with session_scope() as session:
        job, _ = create_job(session, new=new, now=at)
        return job.id


def move(job_id: str, to: DeliveryStatus, *, phones: Sequence[str] | None = None) -> None:
    """Move the job's recipients (or those of `phones`) to `to`, from whatever status."""
    where = col(Delivery.job_id) == job_id
    if phones is not None:
        where = where & col(Delivery.phone).in_(list(phones))
    with session_scope() as session:
        move_deliveries(
            session, where=where, from_statuses=list(DeliveryStatus), to=to, now=datetime.now(UTC)
        )
