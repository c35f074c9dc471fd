"""The send task: store → vendor → store, one batch of recipients at a time.

Each batch is claimed in the store (queued → claimed), held back where the fleet-wide limits
say so, marked sending (committed) right before the vendor call, and settled after it by the
class of what happened (worker.errors):

    accepted                → submitted, with the vendor's batch reference
    RateLimited             → deferred to when the number frees; not an error
    QuotaExceeded           → the job's daily-cap policy: defer to the vendor's next day,
                              fail over to another vendor of the channel, or fail
    Recipient/MessageRejected → failed, with the vendor's words
    VendorBlocked           → the vendor product's breaker opens for the fleet (an alert in
                              the log); the batch fails over when the job allows it, else waits
    TransientError, ConfigurationError
                            → deferred with backoff, counted against the job's error budget,
                              failed when it is spent
    AmbiguousOutcome        → unknown (or deferred, with HERALD_RESEND_AMBIGUOUS)

No wait is a Celery countdown: deferred recipients carry `not_before` in the store and beat's
`herald.release_due` enqueues them again, so no message sits in Redis past its visibility timeout.
The one exception is an unreachable store: the task then retries itself within seconds (far
below the visibility timeout), a few times, before leaving the job to the sweeper; an outcome
that could not be written after a vendor call is retried on the spot (`settle_durably`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis
from sqlmodel import Session, col, select

from tasks.audit import ready_to_send
from tasks.batching import batches_by_text
from tasks.limiters import limiter_for
from tasks.routing import breaker_reason, failover_target, move_to_vendor
from tasks.senders import sender_for
from tasks.settle import BEFORE_CALL, Accepted, apply_cap_policy, defer_ids, settle_durably
from worker import metrics
from worker.app import app
from worker.breaker import seconds_left
from worker.enums import UNSENT, DeliveryStatus, Purpose
from worker.errors import (
    ConfigurationError,
    InvalidInput,
    MessageRejected,
    NotSent,
    RateLimited,
    StoreUnavailable,
    VendorError,
)
from worker.limits import Hold, RateLimiter, Reservation
from worker.names import SEND_JOB_TASK
from worker.producer import enqueue_send
from worker.redis_client import redis_client
from worker.settings import get_settings
from worker.store import (
    Delivery,
    Job,
    claim_for_sending,
    commit_without_waiting_for_disk,
    get_job,
    ids_in,
    mark_enqueued,
    mark_sending,
    move_deliveries,
    queued_vendors,
    session_scope,
    suppressed_among,
    utcnow,
)

log = logging.getLogger(__name__)


STORE_RETRIES = 8
"""Times the task retries itself while the store is unreachable; then the sweeper, which rings
again for any job whose queued recipients were enqueued long ago, takes over."""
STORE_RETRY_MAX_COUNTDOWN_S = 15.0


@app.task(name=SEND_JOB_TASK, bind=True, max_retries=None)
def send_job(self: Any, job_id: str) -> str:
    """Send every queued recipient of one job. The argument is the job id and nothing else.

    While the store is unreachable the task retries itself after a few seconds. That is safe
    wherever the outage struck: rows it had claimed come back when their lease ends, and an
    outcome it could not record is retried before that (`settle_durably`).
    """
    try:
        return deliver_job(job_id)
    except StoreUnavailable as exc:
        retries = int(self.request.retries or 0)
        if retries >= STORE_RETRIES:
            log.error(
                "send_job %s: %s; leaving the job to the sweeper",
                job_id,
                exc,
                extra={"job_id": job_id, "attempt": retries + 1, "error_class": "StoreUnavailable"},
            )
            return "store unavailable"
        countdown = store_retry_countdown_s(retries)
        log.warning(
            "send_job %s: %s; trying again in %.0f s",
            job_id,
            exc,
            countdown,
            extra={"job_id": job_id, "attempt": retries + 1, "error_class": "StoreUnavailable"},
        )
        raise self.retry(countdown=countdown, max_retries=None) from None


def store_retry_countdown_s(retries: int) -> float:
    """1, 2, 4, 8, then 15 s: short, since the outage may last seconds, and far below the
    visibility timeout, so the retry message is never redelivered while it waits."""
    return min(float(2**retries), STORE_RETRY_MAX_COUNTDOWN_S)


def deliver_job(job_id: str) -> str:
    """Send the job's queued recipients until none is left or this run's budget is spent; then
    hand what is left to a new run, queued behind other jobs' runs."""
    budget = RunBudget.starting_now(get_settings().send_run_budget_s)
    with session_scope() as session:
        job = get_job(session, job_id=job_id)
        if job is None:
            log.error("send_job: no job %s in the store", job_id, extra={"job_id": job_id})
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
        vendors = queued_vendors(session, job_id=job_id)
    calls = 0
    tried: set[str] = set()
    while vendors:
        for vendor in vendors:
            tried.add(vendor)
            calls += deliver_via(job, vendor, budget)
            if budget.spent():
                return f"{calls} vendor calls; {hand_over(job_id)}"
        with session_scope() as session:
            vendors = [v for v in queued_vendors(session, job_id=job_id) if v not in tried]
    return f"{calls} vendor calls"


@dataclass(frozen=True)
class RunBudget:
    """How long one send run may start vendor calls (HERALD_SEND_RUN_S): a run of a big job
    ends long before the soft time limit, never in the middle of a vendor call, and other jobs'
    runs take turns with it."""

    ends_at: float

    @classmethod
    def starting_now(cls, seconds: float) -> RunBudget:
        return cls(time.monotonic() + seconds)

    def spent(self) -> bool:
        return time.monotonic() >= self.ends_at


def hand_over(job_id: str) -> str:
    """The run's budget is spent: if recipients are still queued, one new run takes them."""
    now = utcnow()
    with session_scope() as session:
        if not queued_vendors(session, job_id=job_id):
            return "done"
        mark_enqueued(session, job_ids=[job_id], now=now)
    enqueue_send(job_id)
    return "the rest handed to a new run"


def deliver_via(job: Job, vendor: str, budget: RunBudget) -> int:
    """Send the job's queued recipients that go through `vendor`, a batch at a time, while the
    run's budget lasts; return the calls made. Each batch is claimed on its own, so runs of the
    same job on other workers take the next batches meanwhile."""
    reason = breaker_reason(vendor, job.channel)
    if reason is not None:
        route_around_breaker(job, vendor, reason)
        return 0
    if not ready_to_send(job, vendor):
        return 0
    settings = get_settings()
    limiter = limiter_for(vendor, job.channel)
    batch_size = batch_size_for(job, vendor, settings.batch_size)
    calls = 0
    while True:
        claimed_at = utcnow()
        with session_scope() as session:
            claimed = claim_for_sending(
                session, job_id=job.id, vendor=vendor, now=claimed_at, limit=batch_size
            )
            if claimed:  # lost in a crash of the store, the rows would still be queued
                commit_without_waiting_for_disk(session)
        if not claimed:
            return calls
        with session_scope() as session:  # no statement at all unless the job is marketing
            sendable = drop_suppressed(session, job, claimed)
        batches = batches_by_text(sendable)
        for index, batch in enumerate(batches):
            if index > 0 and budget.spent():
                give_back(batches[index:], claimed_at=claimed_at)
                return calls
            calls += send_batch(job, vendor, limiter, batch, claimed_at=claimed_at)
        if budget.spent():
            return calls


def give_back(batches: Sequence[Sequence[Delivery]], *, claimed_at: datetime) -> None:
    """Claimed batches the run has no budget left for go back to the queue for the next run
    (only rows this run's claim still holds)."""
    ids = [d.id for batch in batches for d in batch]
    with session_scope() as session:
        move_deliveries(
            session,
            where=ids_in(ids) & (col(Delivery.claimed_at) == claimed_at),
            from_statuses=[DeliveryStatus.CLAIMED],
            to=DeliveryStatus.QUEUED,
            now=utcnow(),
            detail="the run's time was up before its vendor call: left to the next run",
        )


def send_batch(
    job: Job,
    vendor: str,
    limiter: RateLimiter,
    batch: Sequence[Delivery],
    *,
    claimed_at: datetime,
) -> int:
    """Limits and pacing, then one vendor call for what is left; the calls made.

    `claimed_at` is the claim's token: if the claim outlived its lease and the rows were claimed
    again by another worker, `mark_sending` moves none of them and nothing is sent from here.
    Until then only rows still `claimed` are moved.
    """
    reservation = limiter.reserve([d.phone for d in batch])
    try:
        hold_back(job, vendor, batch, reservation.held)
        granted = [d for d in batch if d.phone in set(reservation.granted)]
        if not granted:
            return 0
        wait_s = wait_for_request_slot(limiter)
        if wait_s > 0:
            paced = RateLimited(vendor, "herald's request-rate cap", retry_after_s=wait_s)
            with session_scope() as session:
                until = utcnow() + timedelta(seconds=wait_s)
                defer_ids(
                    session, [d.id for d in granted], until, str(paced), from_statuses=BEFORE_CALL
                )
            limiter.release(reservation, reservation.granted)
            return 0
        sending_since = utcnow()
        with session_scope() as session:
            still_ours = mark_sending(
                session,
                delivery_ids=[d.id for d in granted],
                now=sending_since,
                claimed_at=claimed_at,
            )
    except StoreUnavailable:
        limiter.release(reservation, reservation.granted)  # nothing went to the vendor
        raise
    if len(still_ours) < len(granted):
        limiter.release(reservation, [d.phone for d in granted if d.id not in still_ours])
        granted = [d for d in granted if d.id in still_ours]
        if not granted:
            return 0
    outcome = call_vendor(job, vendor, granted)
    settle_durably(job, vendor, granted, outcome, sending_since=sending_since)
    tell_limiter(limiter, reservation, granted, outcome)
    return 1


def tell_limiter(
    limiter: RateLimiter,
    reservation: Reservation,
    granted: Sequence[Delivery],
    outcome: Accepted | Exception,
) -> None:
    """After the outcome is in the store: give back what the vendor provably did not send, or
    start the numbers' minute. Redis may be down (a broker outage on the same server): that costs
    only the precision of a minute rule, never the outcome, so it is logged and not raised."""
    try:
        if isinstance(outcome, NotSent | ConfigurationError):
            limiter.release(reservation, reservation.granted)
        else:
            limiter.confirm(reservation, [d.phone for d in granted])
    except redis.RedisError as exc:
        log.warning(
            "limits not updated after a vendor call (%s): %s",
            type(exc).__name__,
            exc,
            extra={"error_class": type(exc).__name__},
        )


def route_around_breaker(job: Job, vendor: str, reason: str) -> None:
    """The vendor refused the account lately: fail over, or wait until its breaker closes."""
    now = utcnow()
    target = failover_target(job, vendor)
    where = (col(Delivery.job_id) == job.id) & (col(Delivery.vendor) == vendor)
    with session_scope() as session:
        if target is not None:
            ids = list(session.exec(select(Delivery.id).where(where)))
            move_to_vendor(
                session,
                delivery_ids=ids,
                from_statuses=[DeliveryStatus.QUEUED],
                vendor=target,
                reason=f"{vendor} is refusing the account ({reason})",
                now=now,
            )
            return
        wait_s = max(1.0, seconds_left(redis_client(), vendor=vendor, channel=job.channel.value))
        why = f"{vendor} is refusing the account ({reason}); waiting for it"
        move_deliveries(
            session,
            where=where,
            from_statuses=[DeliveryStatus.QUEUED],
            to=DeliveryStatus.DEFERRED,
            now=now,
            detail=why,
            last_error=why,
            not_before=now + timedelta(seconds=wait_s),
        )


def drop_suppressed(session: Session, job: Job, claimed: Sequence[Delivery]) -> list[Delivery]:
    """Marketing never goes to a number that opted out: those recipients fail, saying why."""
    if job.purpose is not Purpose.MARKETING or not claimed:
        return list(claimed)
    suppressed = suppressed_among(session, phones=[d.phone for d in claimed])
    for phone, suppression in suppressed.items():
        reason = f"suppressed: {suppression.reason}"
        move_deliveries(
            session,
            where=ids_in([d.id for d in claimed if d.phone == phone]),
            from_statuses=[DeliveryStatus.CLAIMED],
            to=DeliveryStatus.FAILED,
            now=utcnow(),
            detail=reason,
            last_error=reason,
        )
    return [d for d in claimed if d.phone not in suppressed]


def hold_back(job: Job, vendor: str, batch: Sequence[Delivery], held: Sequence[Hold]) -> None:
    """Numbers the limits hold back: the minute rule waits; a daily cap follows the job's
    policy. Neither counts as an error."""
    ids_by_phone = {d.phone: d.id for d in batch}
    for hold in held:
        reason = f"held by the {HOLD_REASONS[hold.reason]} until {hold.until.isoformat()}"
        ids = [ids_by_phone[hold.phone]]
        if hold.reason == "minute":
            with session_scope() as session:
                defer_ids(session, ids, hold.until, reason, from_statuses=BEFORE_CALL)
        else:
            apply_cap_policy(job, vendor, ids, reason, from_statuses=BEFORE_CALL)


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


def batch_size_for(job: Job, vendor: str, default: int) -> int:
    try:
        return sender_for(job, vendor).batch_size
    except ConfigurationError:
        return default  # the call itself reports the missing setting


def call_vendor(
    job: Job, vendor: str, batch: Sequence[Delivery]
) -> Accepted | VendorError | ConfigurationError:
    """One vendor call; its outcome as a value, so that settling it is a separate step."""
    started = time.perf_counter()
    outcome = attempt_call(job, vendor, batch)
    metrics.observe_vendor_call(vendor, outcome, time.perf_counter() - started)
    return outcome


def attempt_call(
    job: Job, vendor: str, batch: Sequence[Delivery]
) -> Accepted | VendorError | ConfigurationError:
    try:
        return Accepted(sender_for(job, vendor).send(batch))
    except (VendorError, ConfigurationError) as exc:
        return exc
    except InvalidInput as exc:  # an adapter's own check of the document's rules, before sending
        return MessageRejected(vendor, f"refused before sending: {exc}")
