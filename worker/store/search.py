"""Finding jobs and paging through their recipients, for `GET /v1/messages`, `herald jobs` and
`herald status`.

Every query here is bounded by a page size and walks an index (`ix_job_created_at_id`,
`ix_delivery_job_id_id`, `ix_delivery_job_id_status_id`, `ix_delivery_phone`), so it stays fast
on a store with millions of deliveries; a job's counts come from one GROUP BY, read from an
index alone, never from loading its recipients.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from worker.enums import Channel, DeliveryStatus
from worker.store.models import Delivery, Job


@dataclass(frozen=True)
class JobFilter:
    """Which jobs `find_jobs` keeps; an empty filter keeps them all.

    `statuses` and `phone` look at the recipients: a job matches when one of its recipients
    has that number and one of those statuses (the same recipient, when both are given).
    """

    statuses: Collection[DeliveryStatus] = field(default_factory=tuple)
    channel: Channel | None = None
    vendor: str | None = None
    phone: str | None = None
    created_from: datetime | None = None
    """Accepted at or after this time."""
    created_to: datetime | None = None
    """Accepted before this time."""
    idempotency_key: str | None = None


@dataclass(frozen=True)
class JobPosition:
    """Where a page of jobs ends: the last job's `(created_at, id)`, newest first."""

    created_at: datetime
    id: str


def find_jobs(
    session: Session, *, where: JobFilter, after: JobPosition | None, limit: int
) -> list[Job]:
    """Up to `limit` jobs matching `where`, newest first (ties by id), after `after`."""
    statement = select(Job)
    if where.channel is not None:
        statement = statement.where(col(Job.channel) == where.channel)
    if where.vendor is not None:
        statement = statement.where(col(Job.vendor) == where.vendor)
    if where.idempotency_key is not None:
        statement = statement.where(col(Job.idempotency_key) == where.idempotency_key)
    if where.created_from is not None:
        statement = statement.where(col(Job.created_at) >= where.created_from)
    if where.created_to is not None:
        statement = statement.where(col(Job.created_at) < where.created_to)
    if where.statuses or where.phone is not None:
        recipient = select(Delivery.id).where(col(Delivery.job_id) == col(Job.id))
        if where.statuses:
            recipient = recipient.where(col(Delivery.status).in_(list(where.statuses)))
        if where.phone is not None:
            recipient = recipient.where(col(Delivery.phone) == where.phone)
        statement = statement.where(recipient.exists())
    if after is not None:
        statement = statement.where(
            sa.tuple_(col(Job.created_at), col(Job.id)) < sa.tuple_(after.created_at, after.id)
        )
    statement = statement.order_by(col(Job.created_at).desc(), col(Job.id).desc()).limit(limit)
    return list(session.exec(statement))


def status_counts_of_jobs(
    session: Session, job_ids: Sequence[str]
) -> dict[str, dict[DeliveryStatus, int]]:
    """Each job's number of recipients by status, in one GROUP BY; statuses no recipient has
    are left out, and so are ids no job has."""
    if not job_ids:
        return {}
    statement = (
        select(Delivery.job_id, Delivery.status, sa.func.count())
        .where(col(Delivery.job_id).in_(list(job_ids)))
        .group_by(col(Delivery.job_id), col(Delivery.status))
    )
    counts: dict[str, dict[DeliveryStatus, int]] = {}
    for job_id, status, number in session.exec(statement):
        counts.setdefault(job_id, {})[DeliveryStatus(status)] = number
    return counts


def recipients_page(
    session: Session,
    *,
    job_id: str,
    statuses: Collection[DeliveryStatus] = (),
    after_id: int | None,
    limit: int,
) -> list[Delivery]:
    """Up to `limit` recipients of a job in job order (their ids), after the one `after_id`,
    only those in `statuses` when some are given."""
    statement = select(Delivery).where(col(Delivery.job_id) == job_id)
    if statuses:
        statement = statement.where(col(Delivery.status).in_(list(statuses)))
    if after_id is not None:
        statement = statement.where(col(Delivery.id) > after_id)
    else:
        # Without a lower bound PostgreSQL may walk the primary key from the store's first
        # delivery, filtering by job, to find a new job's first page: seconds on millions of
        # rows. The job's first id (one probe of ix_delivery_job_id_id) is that bound.
        first_id = select(sa.func.min(Delivery.id)).where(col(Delivery.job_id) == job_id)
        statement = statement.where(col(Delivery.id) >= first_id.scalar_subquery())
    return list(session.exec(statement.order_by(col(Delivery.id)).limit(limit)))
