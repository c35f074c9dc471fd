"""What a producer may do with a job once it is accepted: find it, read it, page through its
recipients, cancel it.

The HTTP API and the CLI both call these, in a session they own, and only translate the
errors (`JobNotFound`, `JobNotCancellable`, `InvalidCursor`) into their own answers.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from worker import store
from worker.cursors import job_cursor, recipient_cursor
from worker.enums import FINAL, DeliveryStatus, JobStatus
from worker.errors import JobNotCancellable, JobNotFound
from worker.schemas import (
    FIRST_RECIPIENTS,
    JobPage,
    JobPublic,
    JobSummary,
    RecipientPage,
    RecipientPublic,
)
from worker.store import Job, JobFilter, JobPosition

MESSAGES_MAX_LIMIT = 500
"""The most jobs one page lists (`GET /v1/messages`, `herald jobs`)."""
RECIPIENTS_MAX_LIMIT = 1_000
"""The most recipients one page lists (`GET /v1/messages/{id}/recipients`, `herald status`)."""


@dataclass(frozen=True)
class Cancelled:
    """A cancel that stopped `recipients` deliveries; `status` is the job's status after it."""

    id: str
    status: JobStatus
    recipients: int


def progress(counts: Mapping[DeliveryStatus, int]) -> float:
    """The percentage of recipients in a final status, rounded down to a tenth, so that 100
    means every one is final."""
    total = sum(counts.values())
    if total == 0:
        return 0.0
    final = sum(n for status, n in counts.items() if status in FINAL)
    return (final * 1000 // total) / 10


def in_status_order(counts: Mapping[DeliveryStatus, int]) -> dict[DeliveryStatus, int]:
    """`counts` in the order a recipient moves through the statuses, for people to read."""
    return {status: counts[status] for status in DeliveryStatus if status in counts}


def summary(job: Job, counts: Mapping[DeliveryStatus, int]) -> JobSummary:
    return JobSummary(
        id=job.id,
        channel=job.channel,
        vendor=job.vendor,
        status=store.job_status_of(set(counts)),
        content=job.content,
        content_ref=job.content_ref,
        purpose=job.purpose,
        idempotency_key=job.idempotency_key,
        created_at=job.created_at,
        send_at=job.send_at,
        expires_at=job.expires_at,
        callback_url=job.callback_url,
        total=sum(counts.values()),
        counts=in_status_order(counts),
        progress=progress(counts),
    )


def find_messages(
    session: Session, *, where: JobFilter, after: JobPosition | None, limit: int
) -> JobPage:
    """A page of jobs matching `where`, newest first, each with its counts."""
    jobs = store.find_jobs(session, where=where, after=after, limit=limit + 1)
    page, more = jobs[:limit], len(jobs) > limit
    counts = store.status_counts_of_jobs(session, [job.id for job in page])
    last = page[-1] if page else None
    return JobPage(
        jobs=[summary(job, counts.get(job.id, {})) for job in page],
        next=job_cursor(JobPosition(last.created_at, last.id)) if more and last else None,
    )


def read_job(session: Session, *, job_id: str) -> JobPublic:
    """A job, its counts and its first `FIRST_RECIPIENTS` recipients."""
    job = store.get_job(session, job_id=job_id)
    if job is None:
        raise JobNotFound(job_id)
    counts = store.status_counts_of_jobs(session, [job_id]).get(job_id, {})
    first = recipients_of(session, job_id=job_id, after_id=None, limit=FIRST_RECIPIENTS)
    return JobPublic(
        **summary(job, counts).model_dump(),
        recipients=first.recipients,
        recipients_next=first.next,
    )


def read_recipients(
    session: Session,
    *,
    job_id: str,
    statuses: Collection[DeliveryStatus] = (),
    after_id: int | None,
    limit: int,
) -> RecipientPage:
    """A page of a job's recipients in job order, only those in `statuses` when given."""
    if store.get_job(session, job_id=job_id) is None:
        raise JobNotFound(job_id)
    return recipients_of(session, job_id=job_id, statuses=statuses, after_id=after_id, limit=limit)


def recipients_of(
    session: Session,
    *,
    job_id: str,
    statuses: Collection[DeliveryStatus] = (),
    after_id: int | None,
    limit: int,
) -> RecipientPage:
    rows = store.recipients_page(
        session, job_id=job_id, statuses=statuses, after_id=after_id, limit=limit + 1
    )
    page, more = rows[:limit], len(rows) > limit
    last_id = page[-1].id if page else None
    return RecipientPage(
        job_id=job_id,
        recipients=[RecipientPublic.model_validate(d, from_attributes=True) for d in page],
        next=recipient_cursor(last_id) if more and last_id is not None else None,
    )


def cancel_job(session: Session, *, job_id: str, now: datetime) -> Cancelled:
    """Cancel every recipient not yet handed to the vendor.

    Raises `JobNotFound`, or `JobNotCancellable` when none is left to cancel.
    """
    if store.get_job(session, job_id=job_id) is None:
        raise JobNotFound(job_id)
    cancelled = store.cancel_job(session, job_id=job_id, now=now)
    if not cancelled:
        raise JobNotCancellable(job_id)
    counts = store.status_counts_of_jobs(session, [job_id]).get(job_id, {})
    return Cancelled(id=job_id, status=store.job_status_of(set(counts)), recipients=len(cancelled))
