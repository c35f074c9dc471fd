"""What a producer may do with a job once it is accepted: read it, cancel it.

The HTTP API and the CLI both call these, in a session they own, and only translate the
errors (`JobNotFound`, `JobNotCancellable`) into their own answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from worker import store
from worker.enums import JobStatus
from worker.errors import JobNotCancellable, JobNotFound
from worker.schemas import JobPublic, RecipientPublic


@dataclass(frozen=True)
class Cancelled:
    """A cancel that stopped `recipients` deliveries; `status` is the job's status after it."""

    id: str
    status: JobStatus
    recipients: int


def read_job(session: Session, *, job_id: str) -> JobPublic:
    job = store.get_job(session, job_id=job_id)
    if job is None:
        raise JobNotFound(job_id)
    status = store.job_status_from_counts(store.status_counts(session, job_id=job_id))
    deliveries = store.deliveries_of(session, job_id=job_id)
    return JobPublic(
        id=job.id,
        channel=job.channel,
        vendor=job.vendor,
        status=status,
        content=job.content,
        content_ref=job.content_ref,
        purpose=job.purpose,
        created_at=job.created_at,
        send_at=job.send_at,
        expires_at=job.expires_at,
        recipients=[RecipientPublic.model_validate(d, from_attributes=True) for d in deliveries],
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
    status = store.job_status_from_counts(store.status_counts(session, job_id=job_id))
    return Cancelled(id=job_id, status=status, recipients=len(cancelled))
