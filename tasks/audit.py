"""Helpers for the tasks: contents a vendor audits before they may be sent (Veesing MMS),
through the store.

The first job of a content creates it at the vendor (`mmsApi/create`) and records its mmsId as
pending; its recipients then wait as `awaiting_audit`. The vendor's audit push (tasks.pushes)
approves or rejects the content, and every job waiting on it moves on. Later jobs of the same
content find it in the store and send at once once approved: one audit serves many sends.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import timedelta
from typing import Any

from sqlmodel import Session, col, select

from tasks.routing import failover_target, move_to_vendor, trip_breaker
from tasks.senders import create_veesing_mms
from worker.enums import AuditStatus, Channel, DeliveryStatus
from worker.errors import (
    AmbiguousOutcome,
    ConfigurationError,
    MessageRejected,
    VendorBlocked,
    VendorError,
)
from worker.producer import enqueue_send
from worker.retry import backoff_s
from worker.settings import get_settings
from worker.store import (
    Delivery,
    Job,
    add_mms_content,
    count_error_attempt,
    mms_content,
    move_deliveries,
    session_scope,
    set_content_ref,
    settle_audits,
    utcnow,
)

log = logging.getLogger(__name__)


def needs_audit(job: Job, vendor: str) -> bool:
    return (vendor, job.channel) == ("veesing", Channel.MMS)


def content_digest(payload: dict[str, Any] | None) -> str:
    canonical = json.dumps(payload or {}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def ready_to_send(job: Job, vendor: str) -> bool:
    """True when the job's content may go through `vendor` now; otherwise its queued recipients
    wait (or fail) and the job is enqueued again when the audit is decided."""
    if not needs_audit(job, vendor):
        return True
    digest = content_digest(job.payload)
    with session_scope() as session:
        content = mms_content(session, vendor=vendor, digest=digest)
    if content is None:
        try:
            ref = create_veesing_mms(job)
        except (VendorError, ConfigurationError) as exc:
            hold_queued_after_error(job, vendor, exc)
            return False
        with session_scope() as session:
            content = add_mms_content(session, vendor=vendor, digest=digest, ref=ref, now=utcnow())
    job.content_ref = content.ref
    now = utcnow()
    with session_scope() as session:
        set_content_ref(session, job_id=job.id, ref=content.ref)
        if content.status is AuditStatus.APPROVED:
            return True
        move_deliveries(
            session,
            where=(col(Delivery.job_id) == job.id) & (col(Delivery.vendor) == vendor),
            from_statuses=[DeliveryStatus.QUEUED],
            to=DeliveryStatus.AWAITING_AUDIT,
            now=now,
            detail=f"waiting for the vendor's audit of mmsId {content.ref}",
        )
        released = settle_audits(session, now=now, timeout_s=get_settings().mms_audit_timeout_s)
    for job_id in released:
        enqueue_send(job_id)
    return False


def hold_queued_after_error(job: Job, vendor: str, error: VendorError | ConfigurationError) -> None:
    """Creating the content failed: nothing was sent, so a refusal fails the recipients and
    anything else retries on the job's error budget.

    An ambiguous create (a read timeout, a 5xx, a reply that cannot be read) is retried too, so
    the same content may be created twice. That is deliberate: `mmsApi/create` only stores the
    content for the vendor's audit and messages no one, so at worst an unused MMS is left at the
    vendor and its audit push matches no content here (kept, then flagged by the sweeper). The
    send that follows an approval is what reaches recipients, and it goes once per batch."""
    settings = get_settings()
    now = utcnow()
    with session_scope() as session:

        def move(to: DeliveryStatus, reason: str, **values: object) -> None:
            move_deliveries(
                session,
                where=(col(Delivery.job_id) == job.id) & (col(Delivery.vendor) == vendor),
                from_statuses=[DeliveryStatus.QUEUED],
                to=to,
                now=now,
                detail=reason,
                last_error=reason,
                **values,
            )

        if isinstance(error, MessageRejected):
            move(DeliveryStatus.FAILED, f"MMS refused at creation: {error}")
            return
        if isinstance(error, VendorBlocked):
            trip_breaker(job, vendor, error)
            target = failover_target(job, vendor)
            if target is not None:
                move_to_vendor(
                    session,
                    delivery_ids=queued_ids(session, job, vendor),
                    from_statuses=[DeliveryStatus.QUEUED],
                    vendor=target,
                    reason=f"MMS creation refused: {error}",
                    now=now,
                )
                return
        attempts = count_error_attempt(session, job_id=job.id)
        if attempts >= settings.max_error_attempts:
            move(
                DeliveryStatus.FAILED,
                f"MMS creation failed: {error} (gave up after {attempts} attempts)",
            )
            return
        if isinstance(error, AmbiguousOutcome):
            log.warning(
                "creating the MMS of job %s may have succeeded unseen (%s); it will be created "
                "again, and the first one, if any, is left unused",
                job.id,
                error,
                extra={"job_id": job.id, "attempt": attempts, "error_class": type(error).__name__},
            )
        else:
            log.warning(
                "creating the MMS of job %s failed: %s",
                job.id,
                error,
                extra={"job_id": job.id, "attempt": attempts, "error_class": type(error).__name__},
            )
        if isinstance(error, VendorBlocked):
            wait_s = settings.vendor_blocked_cooldown_s
        else:
            wait_s = backoff_s(attempts, base_s=settings.retry_base_s, cap_s=settings.retry_max_s)
        move(
            DeliveryStatus.DEFERRED,
            f"MMS creation failed: {error} (attempt {attempts})",
            not_before=now + timedelta(seconds=wait_s),
        )


def queued_ids(session: Session, job: Job, vendor: str) -> list[int | None]:
    statement = select(Delivery.id).where(
        col(Delivery.job_id) == job.id,
        col(Delivery.vendor) == vendor,
        col(Delivery.status) == DeliveryStatus.QUEUED,
    )
    return list(session.exec(statement))
