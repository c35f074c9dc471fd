"""Helpers for the send task: what a vendor call's outcome does to its batch in the store.

`settle` records the outcome by its class (the table in tasks/send.py's docstring); a daily cap
follows the job's policy (`apply_cap_policy`), and waits become `deferred` with `not_before`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from tasks.routing import failover_target, move_to_vendor, trip_breaker
from worker.clock import next_vendor_midnight
from worker.enums import CapPolicy, DeliveryStatus
from worker.errors import (
    AmbiguousOutcome,
    ConfigurationError,
    MessageRejected,
    QuotaExceeded,
    RateLimited,
    RecipientRejected,
    TransientError,
    UnknownReply,
    VendorBlocked,
)
from worker.retry import backoff_s
from worker.settings import get_settings
from worker.store import (
    Delivery,
    Job,
    count_error_attempt,
    ids_in,
    move_deliveries,
    session_scope,
    utcnow,
)

log = logging.getLogger(__name__)

SETTLEABLE = [DeliveryStatus.CLAIMED, DeliveryStatus.SENDING, DeliveryStatus.UNKNOWN]
"""What a batch may be settled from: `claimed` when no call was made; `unknown` when the sweeper
presumed a slow call lost (what the vendor answered is better knowledge than that)."""


@dataclass(frozen=True)
class Accepted:
    vendor_ref: str


def apply_cap_policy(job: Job, vendor: str, ids: Sequence[int | None], reason: str) -> None:
    now = utcnow()
    with session_scope() as session:
        if job.on_daily_cap is CapPolicy.FAIL:
            move_deliveries(
                session,
                where=ids_in(ids),
                from_statuses=SETTLEABLE,
                to=DeliveryStatus.FAILED,
                now=now,
                detail=reason,
                last_error=reason,
            )
            return
        target = failover_target(job, vendor) if job.on_daily_cap is CapPolicy.FAILOVER else None
        if target is not None:
            move_to_vendor(
                session,
                delivery_ids=ids,
                from_statuses=SETTLEABLE,
                vendor=target,
                reason=reason,
                now=now,
            )
            return
        defer_ids(session, ids, next_vendor_midnight(now), reason)


def defer_ids(session: Session, ids: Sequence[int | None], until: datetime, reason: str) -> None:
    move_deliveries(
        session,
        where=ids_in(ids),
        from_statuses=SETTLEABLE,
        to=DeliveryStatus.DEFERRED,
        now=utcnow(),
        detail=reason,
        not_before=until,
        last_error=reason,
    )


def settle(job: Job, vendor: str, batch: Sequence[Delivery], outcome: Accepted | Exception) -> None:
    """Record in the store what the vendor call came to."""
    now = utcnow()
    ids = [d.id for d in batch if d.id is not None]
    if isinstance(outcome, QuotaExceeded):
        apply_cap_policy(job, vendor, ids, str(outcome))
        return
    if isinstance(outcome, RecipientRejected) and len(ids) > 1:
        send_each_alone(ids, outcome, now)
        return
    if isinstance(outcome, VendorBlocked):
        trip_breaker(job, vendor, outcome)
        target = failover_target(job, vendor)
        if target is not None:
            with session_scope() as session:
                move_to_vendor(
                    session,
                    delivery_ids=ids,
                    from_statuses=SETTLEABLE,
                    vendor=target,
                    reason=str(outcome),
                    now=now,
                )
            return
    with session_scope() as session:

        def move(to: DeliveryStatus, detail: str, **values: object) -> None:
            move_deliveries(
                session,
                where=ids_in(ids),
                from_statuses=SETTLEABLE,
                to=to,
                now=now,
                detail=detail,
                **values,
            )

        def defer(wait_s: float, reason: str) -> None:
            defer_ids(session, ids, now + timedelta(seconds=wait_s), reason)

        match outcome:
            case Accepted(vendor_ref=ref):
                move(
                    DeliveryStatus.SUBMITTED,
                    f"vendor ref {ref}",
                    vendor_ref=ref,
                    submitted_at=now,
                    last_error=None,
                )
            case RateLimited(retry_after_s=wait_s):
                defer(wait_s, str(outcome))
            case RecipientRejected() | MessageRejected():
                move(DeliveryStatus.FAILED, str(outcome), last_error=str(outcome))
            case AmbiguousOutcome():
                if get_settings().resend_ambiguous:
                    defer(0, f"{outcome} (resending: HERALD_RESEND_AMBIGUOUS)")
                else:
                    move(DeliveryStatus.UNKNOWN, str(outcome), last_error=str(outcome))
            case TransientError() | VendorBlocked() | ConfigurationError():
                attempts = count_error_attempt(session, job_id=job.id)
                budget = error_budget(outcome)
                if isinstance(outcome, ConfigurationError):
                    log.error("vendor %s cannot send: %s", vendor, outcome)
                if attempts >= budget:
                    reason = f"{outcome} (gave up after {attempts} attempts)"
                    move(DeliveryStatus.FAILED, reason, last_error=reason)
                else:
                    defer(retry_delay_s(outcome, attempts), f"{outcome} (attempt {attempts})")
            case _:
                raise TypeError(f"unexpected send outcome {outcome!r}")


def send_each_alone(ids: Sequence[int], error: RecipientRejected, now: datetime) -> None:
    """A batch refused for "a" bad number, without saying which: nothing was sent, so each
    number is queued again to go alone, and only the bad one fails (docs/design.md, promise 4)."""
    reason = f"{error}; each number of the batch is sent alone to find which"
    with session_scope() as session:
        move_deliveries(
            session,
            where=ids_in(ids),
            from_statuses=SETTLEABLE,
            to=DeliveryStatus.QUEUED,
            now=now,
            detail=reason,
            last_error=reason,
            send_alone=True,
        )


def error_budget(error: Exception) -> int:
    settings = get_settings()
    if isinstance(error, UnknownReply):
        log.warning("undocumented vendor reply, kept verbatim: %s", error)
        return settings.unknown_reply_attempts
    return settings.max_error_attempts


def retry_delay_s(error: Exception, attempt: int) -> float:
    settings = get_settings()
    if isinstance(error, (VendorBlocked, ConfigurationError)):
        return settings.vendor_blocked_cooldown_s
    hinted = error.retry_after_s if isinstance(error, TransientError) else None
    drawn = backoff_s(attempt, base_s=settings.retry_base_s, cap_s=settings.retry_max_s)
    return max(hinted or 0.0, drawn)
