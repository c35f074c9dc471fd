"""What beat's sweeps ask of the store: deliveries whose time has come, and work a worker lost.

Scheduled and deferred deliveries are released when due; a worker that died holding `claimed`
rows had not called the vendor, so they are queued again once the claim's lease has passed; one
that died with rows `sending` may have, so they become `unknown` for a report to settle. A
`submitted` row whose report never came within the report deadline becomes `unknown` too: the
vendor took it, and nothing will tell herald more unless a late report does.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from worker.enums import DeliveryStatus
from worker.store.deliveries import ids_in, move_deliveries
from worker.store.jobs import mark_enqueued
from worker.store.models import Delivery, Job


def release_due(session: Session, *, now: datetime, limit: int = 10_000) -> list[str]:
    """Move scheduled and deferred deliveries whose time has come to queued; return their jobs."""
    return _queue_again(
        session,
        from_statuses=[DeliveryStatus.SCHEDULED, DeliveryStatus.DEFERRED],
        when=col(Delivery.not_before) <= now,
        now=now,
        detail="due",
        limit=limit,
    )


def requeue_stale_claims(session: Session, *, now: datetime, older_than_s: float) -> list[str]:
    """`claimed` past its lease (HERALD_CLAIM_LEASE_S): the worker died or stalled before
    calling the vendor, so sending is still safe. Back to queued; returns their jobs, to enqueue
    again. A stalled worker that wakes up cannot send them: `mark_sending` checks its claim."""
    return _queue_again(
        session,
        from_statuses=[DeliveryStatus.CLAIMED],
        when=col(Delivery.claimed_at) <= _before(now, older_than_s),
        now=now,
        detail="claimed by a worker that stopped before calling the vendor",
    )


def stale_queued_jobs(session: Session, *, now: datetime, older_than_s: float) -> list[str]:
    """Jobs with queued deliveries whose task was last enqueued long ago (it may be lost)."""
    cutoff = now.timestamp() - older_than_s
    statement = (
        select(Job.id, Job.enqueued_at)
        .join(Delivery, col(Delivery.job_id) == col(Job.id))
        .where(col(Delivery.status) == DeliveryStatus.QUEUED)
        .distinct()
    )
    return sorted(
        job_id
        for job_id, enqueued_at in session.exec(statement)
        if enqueued_at is None or enqueued_at.timestamp() <= cutoff
    )


def expire_stale_sending(session: Session, *, now: datetime, older_than_s: float) -> list[int]:
    """`sending` for longer than any task may run: the worker died mid-call → unknown."""
    return move_deliveries(
        session,
        where=col(Delivery.claimed_at) <= _before(now, older_than_s),
        from_statuses=[DeliveryStatus.SENDING],
        to=DeliveryStatus.UNKNOWN,
        now=now,
        detail="sending timed out: the worker stopped during the vendor call",
        last_error="sending timed out: the worker stopped during the vendor call",
    )


NO_REPORT = "no delivery report within the deadline: the vendor's report was lost or never sent"


def expire_unreported(session: Session, *, now: datetime, older_than_s: float) -> list[int]:
    """`submitted` for longer than the report deadline (HERALD_REPORT_DEADLINE_S) with no
    report → unknown. Its report was lost on the way (a 5C page handed over to a worker that
    died, a push the vendor gave up on) or never sent; a report that still comes settles it,
    since `unknown` is reportable."""
    cutoff = _before(now, older_than_s)
    return move_deliveries(
        session,
        where=sa.or_(
            col(Delivery.submitted_at) <= cutoff,
            sa.and_(col(Delivery.submitted_at).is_(None), col(Delivery.updated_at) <= cutoff),
        ),
        from_statuses=[DeliveryStatus.SUBMITTED],
        to=DeliveryStatus.UNKNOWN,
        now=now,
        detail=NO_REPORT,
        last_error=NO_REPORT,
    )


def _queue_again(
    session: Session,
    *,
    from_statuses: Sequence[DeliveryStatus],
    when: Any,
    now: datetime,
    detail: str,
    limit: int | None = None,
) -> list[str]:
    """Move the deliveries in `from_statuses` that match `when` to queued, and mark their jobs
    enqueued; returns those jobs (only of the rows this call moved), for the caller to enqueue."""
    statement = select(Delivery.id, Delivery.job_id).where(
        col(Delivery.status).in_(from_statuses), when
    )
    found = list(session.exec(statement if limit is None else statement.limit(limit)))
    if not found:
        return []
    moved = set(
        move_deliveries(
            session,
            where=ids_in([delivery_id for delivery_id, _ in found]),
            from_statuses=from_statuses,
            to=DeliveryStatus.QUEUED,
            now=now,
            detail=detail,
        )
    )
    job_ids = sorted({job_id for delivery_id, job_id in found if delivery_id in moved})
    mark_enqueued(session, job_ids=job_ids, now=now)
    return job_ids


def _before(now: datetime, seconds: float) -> datetime:
    return datetime.fromtimestamp(now.timestamp() - seconds, UTC)
