"""Helpers for the send task: what a vendor call's outcome does to its batch in the store.

`settle` records the outcome by its class (the table in tasks/send.py's docstring); a daily cap
follows the job's policy (`apply_cap_policy`), and waits become `deferred` with `not_before`.
`settle_durably` records it through a short outage of the store.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from time import monotonic, sleep

from sqlmodel import Session

from tasks.routing import failover_target, move_to_vendor, trip_breaker
from worker import metrics
from worker.clock import next_vendor_midnight
from worker.enums import CapPolicy, DeliveryStatus
from worker.errors import (
    AmbiguousOutcome,
    ConfigurationError,
    MessageRejected,
    QuotaExceeded,
    RateLimited,
    RecipientRejected,
    StoreUnavailable,
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

BEFORE_CALL = [DeliveryStatus.CLAIMED]
"""What a batch held back before its vendor call may be moved from: only rows still claimed. A
row `sending` is another worker's, which claimed it after this worker's claim lapsed."""


@dataclass(frozen=True)
class Accepted:
    vendor_ref: str


def apply_cap_policy(
    job: Job,
    vendor: str,
    ids: Sequence[int | None],
    reason: str,
    *,
    from_statuses: Sequence[DeliveryStatus] = SETTLEABLE,
) -> None:
    now = utcnow()
    with session_scope() as session:
        if job.on_daily_cap is CapPolicy.FAIL:
            move_deliveries(
                session,
                where=ids_in(ids),
                from_statuses=from_statuses,
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
                from_statuses=from_statuses,
                vendor=target,
                reason=reason,
                now=now,
            )
            return
        defer_ids(session, ids, next_vendor_midnight(now), reason, from_statuses=from_statuses)


def defer_ids(
    session: Session,
    ids: Sequence[int | None],
    until: datetime,
    reason: str,
    *,
    from_statuses: Sequence[DeliveryStatus] = SETTLEABLE,
) -> None:
    move_deliveries(
        session,
        where=ids_in(ids),
        from_statuses=from_statuses,
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
                metrics.count_retries(outcome, len(ids))
            case RecipientRejected() | MessageRejected():
                move(DeliveryStatus.FAILED, str(outcome), last_error=str(outcome))
            case AmbiguousOutcome():
                if get_settings().resend_ambiguous:
                    defer(0, f"{outcome} (resending: HERALD_RESEND_AMBIGUOUS)")
                    metrics.count_retries(outcome, len(ids))
                else:
                    move(DeliveryStatus.UNKNOWN, str(outcome), last_error=str(outcome))
            case TransientError() | VendorBlocked() | ConfigurationError():
                attempts = count_error_attempt(session, job_id=job.id)
                budget = error_budget(outcome)
                if isinstance(outcome, ConfigurationError):
                    log.error(
                        "vendor %s cannot send: %s",
                        vendor,
                        outcome,
                        extra=log_context(job, vendor, outcome, attempts),
                    )
                if attempts >= budget:
                    reason = f"{outcome} (gave up after {attempts} attempts)"
                    move(DeliveryStatus.FAILED, reason, last_error=reason)
                else:
                    defer(retry_delay_s(outcome, attempts), f"{outcome} (attempt {attempts})")
                    metrics.count_retries(outcome, len(ids))
            case _:
                raise TypeError(f"unexpected send outcome {outcome!r}")


STORE_RETRY_FIRST_WAIT_S = 0.5
STORE_RETRY_MAX_WAIT_S = 5.0


def settle_durably(
    job: Job,
    vendor: str,
    batch: Sequence[Delivery],
    outcome: Accepted | Exception,
    *,
    sending_since: datetime,
) -> None:
    """`settle`, tried again while the store is unreachable, with capped backoff.

    The vendor call has been made: its outcome exists only in this process, so it is not given
    up at the first failed write. The retries last HERALD_STORE_RETRY_S at most, and never past
    the moment the sweeper would presume the call lost (HERALD_SENDING_TIMEOUT_S after
    `sending_since`), so the sweeper's "the worker stopped during the vendor call" is never
    written for a worker that is still trying. Settling twice changes nothing (every move is
    conditional), so a write whose answer was lost is harmless to repeat.
    """
    settings = get_settings()
    presumed_lost_in_s = (
        sending_since + timedelta(seconds=settings.sending_timeout_s) - utcnow()
    ).total_seconds()
    deadline = monotonic() + min(settings.store_retry_s, presumed_lost_in_s)
    wait_s = STORE_RETRY_FIRST_WAIT_S
    while True:
        try:
            settle(job, vendor, batch, outcome)
            return
        except StoreUnavailable as exc:
            if monotonic() + wait_s >= deadline:
                log.error(
                    "could not record the outcome of a %s call for job %s (%d recipients, %s): "
                    "%s; the sweeper will mark them unknown",
                    vendor,
                    job.id,
                    len(batch),
                    describe(outcome),
                    exc,
                    extra=log_context(job, vendor, outcome),
                )
                raise
            log.warning(
                "store unreachable, recording job %s's outcome again in %.1f s",
                job.id,
                wait_s,
                extra=log_context(job, vendor, outcome),
            )
            sleep(wait_s)
            wait_s = min(2 * wait_s, STORE_RETRY_MAX_WAIT_S)


def log_context(
    job: Job, vendor: str, outcome: Accepted | Exception, attempt: int | None = None
) -> dict[str, object]:
    """The `extra=` of a log line about a vendor call's outcome (JSON logs: worker/log_format)."""
    context: dict[str, object] = {"job_id": job.id, "vendor": vendor}
    if isinstance(outcome, Exception):
        context["error_class"] = type(outcome).__name__
    if attempt is not None:
        context["attempt"] = attempt
    return context


def describe(outcome: Accepted | Exception) -> str:
    """What the operator needs to reconcile by hand an outcome that could not be recorded."""
    if isinstance(outcome, Accepted):
        return f"accepted with vendor ref {outcome.vendor_ref}"
    return type(outcome).__name__


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
        log.warning(
            "undocumented vendor reply, kept verbatim: %s",
            error,
            extra={"vendor": error.vendor, "error_class": type(error).__name__},
        )
        return settings.unknown_reply_attempts
    return settings.max_error_attempts


def retry_delay_s(error: Exception, attempt: int) -> float:
    settings = get_settings()
    if isinstance(error, (VendorBlocked, ConfigurationError)):
        return settings.vendor_blocked_cooldown_s
    hinted = error.retry_after_s if isinstance(error, TransientError) else None
    drawn = backoff_s(attempt, base_s=settings.retry_base_s, cap_s=settings.retry_max_s)
    return max(hinted or 0.0, drawn)
