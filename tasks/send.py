"""The send task: store → vendor → store, one batch of recipients at a time.

Each batch is claimed in the store (queued → sending, committed) before the vendor is called,
and settled after it by the class of what happened (worker.errors):

    accepted                → submitted, with the vendor's batch reference
    RateLimited             → deferred to when the number frees; not an error
    QuotaExceeded           → deferred to the vendor's next day (Asia/Shanghai)
    Recipient/MessageRejected → failed, with the vendor's words
    TransientError, VendorBlocked, ConfigurationError
                            → deferred with backoff, counted against the job's error budget,
                              failed when it is spent
    AmbiguousOutcome        → unknown (or deferred, with HERALD_RESEND_AMBIGUOUS)

No wait is a Celery countdown: deferred recipients carry `not_before` in the store and beat's
`herald.release_due` enqueues them again, so no message sits in Redis past its visibility timeout.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col

from tasks.audit import ready_to_send
from tasks.limits import limiter_for
from tasks.vendors import sender_for
from worker.app import app
from worker.errors import (
    AmbiguousOutcome,
    ConfigurationError,
    InvalidInput,
    MessageRejected,
    NotSent,
    QuotaExceeded,
    RateLimited,
    RecipientRejected,
    TransientError,
    UnknownReply,
    VendorBlocked,
    VendorError,
)
from worker.limits import Hold, RateLimiter
from worker.retry import backoff_s
from worker.settings import get_settings
from worker.store import (
    UNSENT,
    Delivery,
    DeliveryStatus,
    Job,
    Purpose,
    claim_for_sending,
    count_error_attempt,
    get_job,
    ids_in,
    mark_sending,
    move_deliveries,
    session_scope,
    suppressed_among,
    utcnow,
)
from worker.vendors.clock import SHANGHAI

log = logging.getLogger(__name__)


@app.task(name="herald.send_job", max_retries=None)
def send_job(job_id: str) -> str:
    """Send every queued recipient of one job. The argument is the job id and nothing else."""
    return deliver_job(job_id)


def deliver_job(job_id: str) -> str:
    settings = get_settings()
    with session_scope() as session:
        job = get_job(session, job_id=job_id)
        if job is None:
            log.error("send_job: no job %s in the store", job_id)
            return "missing"
        if job.expires_at is not None and job.expires_at <= utcnow():
            expired = move_deliveries(
                session,
                where=col(Delivery.job_id) == job_id,
                from_statuses=UNSENT,
                to=DeliveryStatus.FAILED,
                now=utcnow(),
                detail="expired",
                last_error="expired",
            )
            return f"expired {len(expired)}"
    if not ready_to_send(job):
        return "waiting for the content's audit"
    limiter = limiter_for(job.vendor, job.channel)
    batch_size = batch_size_for(job, settings.batch_size)
    calls = 0
    while True:
        with session_scope() as session:
            batch = claim_for_sending(session, job_id=job_id, now=utcnow(), limit=batch_size)
        if not batch:
            return f"{calls} vendor calls"
        batch = drop_suppressed(job, batch)
        if not batch:
            continue
        reservation = limiter.reserve([d.phone for d in batch])
        defer_held(batch, reservation.held)
        granted = [d for d in batch if d.phone in set(reservation.granted)]
        if not granted:
            continue
        wait_s = wait_for_request_slot(limiter)
        if wait_s > 0:
            limiter.release(reservation, reservation.granted)
            paced = RateLimited(job.vendor, "herald's request-rate cap", retry_after_s=wait_s)
            settle(job, granted, paced)
            continue
        with session_scope() as session:
            still_ours = mark_sending(session, delivery_ids=[d.id for d in granted], now=utcnow())
        if len(still_ours) < len(granted):
            cancelled = [p for d in granted if d.id not in still_ours for p in [d.phone]]
            limiter.release(reservation, cancelled)
            granted = [d for d in granted if d.id in still_ours]
            if not granted:
                continue
        outcome = call_vendor(job, granted)
        if isinstance(outcome, NotSent | ConfigurationError):
            limiter.release(reservation, reservation.granted)
        settle(job, granted, outcome)
        calls += 1


def drop_suppressed(job: Job, batch: Sequence[Delivery]) -> list[Delivery]:
    """Marketing never goes to a number that opted out: those recipients fail, saying why."""
    if job.purpose is not Purpose.MARKETING:
        return list(batch)
    with session_scope() as session:
        suppressed = suppressed_among(session, phones=[d.phone for d in batch])
        for phone, suppression in suppressed.items():
            reason = f"suppressed: {suppression.reason}"
            move_deliveries(
                session,
                where=ids_in([d.id for d in batch if d.phone == phone]),
                from_statuses=[DeliveryStatus.CLAIMED],
                to=DeliveryStatus.FAILED,
                now=utcnow(),
                detail=reason,
                last_error=reason,
            )
    return [d for d in batch if d.phone not in suppressed]


def defer_held(batch: Sequence[Delivery], held: Sequence[Hold]) -> None:
    """Numbers the limits hold back wait in the store until they may go: not an error."""
    if not held:
        return
    ids_by_phone = {d.phone: d.id for d in batch}
    now = utcnow()
    with session_scope() as session:
        for hold in held:
            reason = f"held by the {HOLD_REASONS[hold.reason]} until {hold.until.isoformat()}"
            move_deliveries(
                session,
                where=ids_in([ids_by_phone[hold.phone]]),
                from_statuses=[DeliveryStatus.CLAIMED],
                to=DeliveryStatus.DEFERRED,
                now=now,
                detail=reason,
                not_before=hold.until,
                last_error=reason,
            )


HOLD_REASONS = {
    "minute": "one-message-per-minute rule",
    "number_day": "daily cap of this number",
    "account_day": "daily cap of the account",
}
MAX_PACING_SLEEP_S = 1.0


def wait_for_request_slot(limiter: RateLimiter) -> float:
    """Pace requests to the vendor's per-second cap: sleep through short waits, else say how
    long (the batch is then deferred rather than holding a worker)."""
    while True:
        wait_s = limiter.acquire_request()
        if wait_s == 0:
            return 0.0
        if wait_s > MAX_PACING_SLEEP_S:
            return wait_s
        time.sleep(wait_s)


@dataclass(frozen=True)
class Accepted:
    vendor_ref: str


def batch_size_for(job: Job, default: int) -> int:
    try:
        return sender_for(job).batch_size
    except ConfigurationError:
        return default  # the call itself reports the missing setting


def call_vendor(job: Job, batch: Sequence[Delivery]) -> Accepted | VendorError | ConfigurationError:
    """One vendor call; its outcome as a value, so that settling it is a separate step."""
    try:
        return Accepted(sender_for(job).send(batch))
    except (VendorError, ConfigurationError) as exc:
        return exc
    except InvalidInput as exc:  # an adapter's own check of the document's rules, before sending
        return MessageRejected(job.vendor, f"refused before sending: {exc}")


def settle(job: Job, batch: Sequence[Delivery], outcome: Accepted | Exception) -> None:
    """Record in the store what the vendor call came to."""
    now = utcnow()
    ids = [d.id for d in batch if d.id is not None]
    with session_scope() as session:

        def move(to: DeliveryStatus, detail: str, **values: object) -> None:
            # From `claimed` when no call was made (request pacing); from `unknown` too: the
            # sweeper may have presumed a slow call lost, and what the vendor answered is
            # better knowledge than that presumption.
            move_deliveries(
                session,
                where=ids_in(ids),
                from_statuses=[
                    DeliveryStatus.CLAIMED,
                    DeliveryStatus.SENDING,
                    DeliveryStatus.UNKNOWN,
                ],
                to=to,
                now=now,
                detail=detail,
                **values,
            )

        def defer(wait_s: float, reason: str) -> None:
            move(
                DeliveryStatus.DEFERRED,
                reason,
                not_before=now + timedelta(seconds=wait_s),
                last_error=reason,
            )

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
            case QuotaExceeded():
                defer(seconds_to_next_vendor_day(now), str(outcome))
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
                if isinstance(outcome, (VendorBlocked, ConfigurationError)):
                    log.error("vendor %s cannot send: %s", job.vendor, outcome)
                if attempts >= budget:
                    reason = f"{outcome} (gave up after {attempts} attempts)"
                    move(DeliveryStatus.FAILED, reason, last_error=reason)
                else:
                    defer(retry_delay_s(outcome, attempts), f"{outcome} (attempt {attempts})")
            case _:
                raise TypeError(f"unexpected send outcome {outcome!r}")


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


def seconds_to_next_vendor_day(now: datetime) -> float:
    """Seconds until 00:00 Asia/Shanghai, when the vendors' daily caps start again."""
    local = now.astimezone(SHANGHAI)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - local).total_seconds()
