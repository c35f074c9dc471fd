"""MMS contents a vendor audits (Veesing `mmsApi/create`), and the deliveries waiting for one.

One stored content per distinct MMS and vendor, so jobs of equal content share one mmsId and one
audit; `settle_audits` releases or fails the deliveries waiting for the result.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from worker.enums import AuditStatus, DeliveryStatus
from worker.store.deliveries import ids_in, move_deliveries
from worker.store.jobs import mark_enqueued
from worker.store.models import Delivery, Job, MmsContent


def mms_content(session: Session, *, vendor: str, digest: str) -> MmsContent | None:
    statement = select(MmsContent).where(
        col(MmsContent.vendor) == vendor, col(MmsContent.digest) == digest
    )
    return session.exec(statement).first()


def add_mms_content(
    session: Session, *, vendor: str, digest: str, ref: str, now: datetime
) -> MmsContent:
    """Record a created content as pending; when another worker recorded the same content
    first, that one is kept (the duplicate mmsId is simply never used)."""
    content = MmsContent(
        vendor=vendor, digest=digest, ref=ref, status=AuditStatus.PENDING, created_at=now
    )
    try:
        with session.begin_nested():
            session.add(content)
    except IntegrityError:
        existing = mms_content(session, vendor=vendor, digest=digest)
        assert existing is not None
        return existing
    return content


def set_content_ref(session: Session, *, job_id: str, ref: str) -> None:
    session.exec(sa.update(Job).where(col(Job.id) == job_id).values(content_ref=ref))


def decide_audit(
    session: Session, *, vendor: str, ref: str, approved: bool, reason: str | None, now: datetime
) -> bool:
    """Record the vendor's audit result for a content; False when no content has that id."""
    statement = (
        sa.update(MmsContent)
        .where(col(MmsContent.vendor) == vendor, col(MmsContent.ref) == ref)
        .values(
            status=AuditStatus.APPROVED if approved else AuditStatus.REJECTED,
            reason=reason,
            decided_at=now,
        )
    )
    return bool(session.exec(statement).rowcount)


def settle_audits(session: Session, *, now: datetime, timeout_s: float) -> list[str]:
    """Move deliveries awaiting an audit that has been decided, or has taken too long.

    Approved → queued (returns their jobs, to enqueue); rejected → failed with the vendor's
    reason; pending past `timeout_s` → failed. Run by the audit push and by the sweeper, so a
    delivery that went to `awaiting_audit` just after its push was applied is not stranded.
    """
    waiting = list(
        session.exec(
            select(Delivery.id, Delivery.job_id, MmsContent.status, MmsContent.reason)
            .join(Job, col(Job.id) == col(Delivery.job_id))
            .join(
                MmsContent,
                sa.and_(
                    col(MmsContent.ref) == col(Job.content_ref),
                    col(MmsContent.vendor) == col(Delivery.vendor),
                ),
            )
            .where(col(Delivery.status) == DeliveryStatus.AWAITING_AUDIT)
        )
    )
    cutoff = datetime.fromtimestamp(now.timestamp() - timeout_s, UTC)
    released: set[str] = set()
    for delivery_id, job_id, status, reason in waiting:
        where = ids_in([delivery_id])
        if status is AuditStatus.APPROVED:
            if move_deliveries(
                session,
                where=where,
                from_statuses=[DeliveryStatus.AWAITING_AUDIT],
                to=DeliveryStatus.QUEUED,
                now=now,
                detail="MMS approved by the vendor's audit",
            ):
                released.add(job_id)
            continue
        if status is AuditStatus.REJECTED:
            why = f"MMS rejected by the vendor's audit: {reason or 'no reason given'}"
        else:
            why = "MMS audit result not received in time (HERALD_MMS_AUDIT_TIMEOUT_S)"
            where = sa.and_(where, col(Delivery.updated_at) <= cutoff)
        move_deliveries(
            session,
            where=where,
            from_statuses=[DeliveryStatus.AWAITING_AUDIT],
            to=DeliveryStatus.FAILED,
            now=now,
            detail=why,
            last_error=why,
        )
    job_ids = sorted(released)
    mark_enqueued(session, job_ids=job_ids, now=now)
    return job_ids
