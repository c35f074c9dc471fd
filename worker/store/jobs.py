"""Jobs: storing a request with its deliveries, reading a job back, and its overall status."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from worker.enums import (
    DEFAULT_CAP_POLICY,
    FINAL,
    CapPolicy,
    Channel,
    DeliveryStatus,
    JobStatus,
    Purpose,
)
from worker.store.models import Delivery, DeliveryEvent, Job


@dataclass(frozen=True)
class NewJob:
    """A validated request, ready to store."""

    channel: Channel
    vendor: str
    content: str
    phones: Sequence[str]
    purpose: Purpose = Purpose.MARKETING
    payload: dict[str, Any] | None = None
    texts: Mapping[str, str] | None = None
    on_daily_cap: CapPolicy | None = None
    allow_failover: bool = True
    send_at: datetime | None = None
    expires_at: datetime | None = None
    idempotency_key: str | None = None
    api_key_name: str | None = None
    """Who asked: the API key's name, "cli" for the command line, None for Python callers."""
    callback_url: str | None = None
    """Where its recipients' status changes are POSTed; None: nowhere."""


def create_job(session: Session, *, new: NewJob, now: datetime) -> tuple[Job, bool]:
    """Store a job and its deliveries; return `(job, created)`.

    With an idempotency key already used, returns the first job and `created=False`.
    """
    if new.idempotency_key is not None:
        existing = job_by_idempotency_key(session, key=new.idempotency_key)
        if existing is not None:
            return existing, False
    scheduled = new.send_at is not None and new.send_at > now
    job = Job(
        channel=new.channel,
        vendor=new.vendor,
        purpose=new.purpose,
        content=new.content,
        payload=new.payload,
        on_daily_cap=new.on_daily_cap or DEFAULT_CAP_POLICY[new.channel.value],
        allow_failover=new.allow_failover,
        idempotency_key=new.idempotency_key,
        api_key_name=new.api_key_name,
        callback_url=new.callback_url,
        send_at=new.send_at,
        expires_at=new.expires_at,
        created_at=now,
        enqueued_at=None if scheduled else now,
    )
    status = DeliveryStatus.SCHEDULED if scheduled else DeliveryStatus.QUEUED
    session.add(job)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        assert new.idempotency_key is not None
        existing = job_by_idempotency_key(session, key=new.idempotency_key)
        if existing is None:
            raise
        return existing, False
    session.add_all(
        Delivery(
            job_id=job.id,
            phone=phone,
            vendor=new.vendor,
            channel=new.channel,
            text=new.texts.get(phone) if new.texts else None,
            status=status,
            not_before=new.send_at if scheduled else None,
            updated_at=now,
        )
        for phone in new.phones
    )
    return job, True


def job_by_idempotency_key(session: Session, *, key: str) -> Job | None:
    return session.exec(select(Job).where(Job.idempotency_key == key)).first()


def get_job(session: Session, *, job_id: str) -> Job | None:
    if "\x00" in job_id:  # no id has one, and PostgreSQL refuses to even look it up
        return None
    return session.get(Job, job_id)


def deliveries_of(session: Session, *, job_id: str) -> list[Delivery]:
    statement = select(Delivery).where(Delivery.job_id == job_id).order_by(col(Delivery.id))
    return list(session.exec(statement))


def events_of(session: Session, *, delivery_ids: Sequence[int]) -> list[DeliveryEvent]:
    statement = (
        select(DeliveryEvent)
        .where(col(DeliveryEvent.delivery_id).in_(delivery_ids))
        .order_by(col(DeliveryEvent.id))
    )
    return list(session.exec(statement))


def job_status(deliveries: Iterable[Delivery]) -> JobStatus:
    return job_status_of({d.status for d in deliveries})


def job_status_of(statuses: Collection[DeliveryStatus]) -> JobStatus:
    """A job's status from the set of its recipients' statuses (docs/design.md, "Job status")."""
    statuses = set(statuses)
    open_statuses = statuses - set(FINAL)
    if not open_statuses:
        return (
            JobStatus.CANCELLED if statuses == {DeliveryStatus.CANCELLED} else JobStatus.COMPLETED
        )
    if open_statuses == {DeliveryStatus.SCHEDULED}:
        return JobStatus.SCHEDULED
    busy = {
        DeliveryStatus.QUEUED,
        DeliveryStatus.DEFERRED,
        DeliveryStatus.CLAIMED,
        DeliveryStatus.AWAITING_AUDIT,
        DeliveryStatus.SENDING,
    }
    if open_statuses & busy:
        return JobStatus.QUEUED
    if DeliveryStatus.SCHEDULED in open_statuses:
        return JobStatus.SCHEDULED
    return JobStatus.SUBMITTED


def mark_enqueued(session: Session, *, job_ids: Sequence[str], now: datetime) -> None:
    if job_ids:
        session.exec(sa.update(Job).where(col(Job.id).in_(job_ids)).values(enqueued_at=now))


def count_error_attempt(session: Session, *, job_id: str) -> int:
    """Add one failed vendor call to the job's error budget; return the new count."""
    session.exec(
        sa.update(Job)
        .where(col(Job.id) == job_id)
        .values(error_attempts=col(Job.error_attempts) + 1)
    )
    job = session.get(Job, job_id, populate_existing=True)
    assert job is not None
    return job.error_attempts
