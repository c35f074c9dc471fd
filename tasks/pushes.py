"""Apply the vendor pushes that the API stored: receipts settle deliveries, replies are kept.

The API commits each push as received (`VendorPush`) and rings a doorbell
(worker/push_doorbell.py); `herald.apply_pushes` (tasks/push_drain.py) then applies the stored
pushes in batches, and the sweeper applies any push still unapplied, so a push is never lost to
a worker that was down. Applying twice is harmless: a report only moves a delivery that is still
waiting for one.

A batch (`apply_batch`) takes up to PUSHES_PER_BATCH unapplied pushes in one transaction (locked
on PostgreSQL, skipping those another applier holds), parses them all and applies their records
together: the delivery reports that settle a waiting delivery in a few statements for the
whole batch (worker/store/report_batches.py), every other record by the code that applies one
record (`apply_record`), in the order received. A 5C page of many records goes the same way,
RECORDS_PER_CHUNK records at a time.

A batch that fails for any reason but an outage of the store is applied again one push at a
time, each in a transaction of its own (`apply_push_alone`). One whose apply fails there (a
database refusal such as PostgreSQL's DataError, a parser's untyped error) is quarantined: marked
applied with `quarantined: <error class>` and left in the store for an operator, so it never
blocks the others. The sweep takes pushes no worker has tried yet first, then goes round those
tried before (their report named no stored delivery yet) a batch at a time, so stored unmatched
pushes never starve the matched ones.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from worker.app import app
from worker.delivery_reports import AuditResult, DeliveryReport, InboundReply, VendorNews
from worker.errors import ReportFormatError, StoreUnavailable
from worker.names import APPLY_PUSH_TASK
from worker.producer import enqueue_send
from worker.settings import get_settings
from worker.store import (
    ReportOutcome,
    VendorPush,
    add_inbound,
    apply_report,
    decide_audit,
    mark_push_applied,
    session_scope,
    settle_audits,
    suppress,
    utcnow,
)
from worker.store.pushes import (
    mark_pushes,
    pushes_never_tried,
    pushes_to_retry,
    quarantine_push,
    take_pushes,
)
from worker.store.report_batches import ReportKey, report_key, settle_reports
from worker.vendors import chuangrui, fivec, veesing, veesing_mms, veesing_voice

log = logging.getLogger(__name__)


PUSHES_PER_BATCH = 500
"""Pushes one batch takes at most (one transaction)."""
RECORDS_PER_CHUNK = 5000
"""Records whose reports are settled together, in a fixed number of statements."""
PUSHES_PER_SWEEP = 500
"""Pushes never tried that one sweep applies at most, oldest first."""
RETRIES_PER_SWEEP = 100
"""Pushes tried before (unmatched) that one sweep tries again, going round them all: each is
retried every (unmatched pushes / RETRIES_PER_SWEEP) sweeps, and never delays a new one."""


@app.task(name=APPLY_PUSH_TASK)
def apply_push(push_id: int) -> str:
    return apply_push_alone(push_id, now=utcnow())


def apply_push_alone(push_id: int, *, now: datetime, flag_before: datetime | None = None) -> str:
    """Apply one stored push in a transaction of its own, or quarantine it when that fails
    (an outage of the store is raised instead: the push is then tried again later). A push
    received before `flag_before` that is still unapplied is flagged rather than applied.

    A unique key broken by a concurrent writer (two opt-outs of one number at once) is tried
    once more first: the second try finds the row the other one committed."""
    tries_left = 2
    while True:
        tries_left -= 1
        try:
            return apply_in_transaction(push_id, now=now, flag_before=flag_before)
        except (StoreUnavailable, SoftTimeLimitExceeded):
            raise
        except Exception as exc:
            if isinstance(exc, IntegrityError) and tries_left > 0:
                continue
            return quarantine(push_id, exc, now=now)


def apply_in_transaction(push_id: int, *, now: datetime, flag_before: datetime | None) -> str:
    with session_scope() as session:
        # Locked on PostgreSQL: a batch holding it is waited for, and then it is applied already.
        push = session.get(VendorPush, push_id, with_for_update=True)
        if push is None:
            log.error("apply_push: no push %s in the store", push_id, extra={"push_id": push_id})
            return "missing"
        if push.applied_at is not None:
            return "already applied"
        if flag_before is not None and push.received_at < flag_before:
            return give_up_on(session, push=push, now=now)
        return apply_stored_push(session, push=push, now=now)


def quarantine(push_id: int, error: Exception, *, now: datetime) -> str:
    """Set aside a push whose apply failed, naming only the error's class: a database error's
    words may quote the push's fields (numbers, content)."""
    name = type(error).__name__
    log.error(
        "push %s could not be applied (%s): quarantined, kept for an operator",
        push_id,
        name,
        extra={"push_id": push_id, "error_class": name},
    )
    with session_scope() as session:
        quarantine_push(session, push_id=push_id, error=name, now=now)
    return f"quarantined: {name}"


@dataclass
class RetryCursor:
    """Where this process's sweeps are in their round of pushes tried before. It lives in the
    process only: a restart merely begins the round again."""

    after_id: int = 0


_retry_cursor = RetryCursor()


def sweep_pushes(*, now: datetime) -> int:
    """Apply pushes not applied yet: those never tried (up to PUSHES_PER_SWEEP), then the next
    RETRIES_PER_SWEEP of the round of pushes tried before; those unmatched past the window are
    flagged. Returns how many pushes were handled."""
    flag_before = now - timedelta(seconds=get_settings().unmatched_report_window_s)
    with session_scope() as session:
        fresh = pushes_never_tried(session, limit=PUSHES_PER_SWEEP)
        retries = pushes_to_retry(session, after_id=_retry_cursor.after_id, limit=RETRIES_PER_SWEEP)
    if retries:
        _retry_cursor.after_id = retries[-1]
    for ids in (fresh, retries):
        if ids:
            apply_batch(ids=ids, now=now, flag_before=flag_before)
    return len(fresh) + len(retries)


@dataclass
class Batch:
    """What one batch took and what became of it."""

    taken: list[int] = field(default_factory=list)
    outcomes: dict[int, str] = field(default_factory=dict)
    alone: list[int] = field(default_factory=list)
    """Pushes left to be applied on their own after the batch: those carrying an audit result
    (its apply commits, then enqueues the jobs it releases)."""


def apply_batch(
    *, ids: Sequence[int] | None = None, now: datetime, flag_before: datetime | None = None
) -> int:
    """Apply a batch of unapplied pushes in one transaction: those of `ids`, or the oldest never
    tried (up to PUSHES_PER_BATCH). A push received before `flag_before` is flagged rather than
    applied. If the batch fails for any reason but an outage of the store, its pushes are
    applied one at a time (`apply_push_alone`), where a poison push is quarantined alone.
    Returns how many pushes it took."""
    batch = Batch()
    try:
        with session_scope() as session:
            pushes = take_pushes(session, ids=ids, limit=PUSHES_PER_BATCH)
            batch.taken = [push.id for push in pushes if push.id is not None]
            apply_taken(session, pushes=pushes, batch=batch, now=now, flag_before=flag_before)
            mark_pushes(session, outcomes=batch.outcomes, now=now)
    except (StoreUnavailable, SoftTimeLimitExceeded):
        raise
    except Exception as exc:
        log.warning(
            "a batch of %d pushes failed (%s); applying them one at a time",
            len(batch.taken),
            type(exc).__name__,
        )
        batch.alone = batch.taken
    for push_id in batch.alone:
        apply_push_alone(push_id, now=now, flag_before=flag_before)
    return len(batch.taken)


def apply_taken(
    session: Session,
    *,
    pushes: list[VendorPush],
    batch: Batch,
    now: datetime,
    flag_before: datetime | None,
) -> None:
    """Parse the taken pushes and apply all their records together; fills `batch`."""
    parsed: list[tuple[VendorPush, PushKind, Sequence[VendorNews]]] = []
    for push in pushes:
        assert push.id is not None
        if flag_before is not None and push.received_at < flag_before:
            batch.outcomes[push.id] = give_up_on(session, push=push, now=now, mark=False)
            continue
        try:
            kind, records = parse_push(push)
        except ReportFormatError as exc:
            batch.outcomes[push.id] = malformed(push, exc)
            continue
        if any(isinstance(record, AuditResult) for record in records):
            batch.alone.append(push.id)
            continue
        parsed.append((push, kind, records))
    outcomes = iter(
        apply_records(session, records=[r for _, _, records in parsed for r in records], now=now)
    )
    for push, kind, records in parsed:
        assert push.id is not None
        batch.outcomes[push.id] = kind.summary([next(outcomes) for _ in records])


def give_up_on(session: Session, *, push: VendorPush, now: datetime, mark: bool = True) -> str:
    """A report that still names no stored delivery after the window: flagged, kept, left
    (marked so here unless `mark` is false: a batch marks its pushes together)."""
    outcome = f"unmatched after {get_settings().unmatched_report_window_s:.0f} s: flagged"
    log.error(
        "%s %s push %s matched no delivery in time; flagged",
        push.vendor,
        push.kind,
        push.id,
        extra={"push_id": push.id, "vendor": push.vendor},
    )
    if mark:
        mark_push_applied(session, push=push, outcome=outcome, now=now)
    return outcome


def malformed(push: VendorPush, error: ReportFormatError) -> str:
    log.error(
        "malformed %s %s push %s: %s",
        push.vendor,
        push.kind,
        push.id,
        error,
        extra={"push_id": push.id, "vendor": push.vendor, "error_class": type(error).__name__},
    )
    return f"malformed: {error}"


def apply_stored_push(session: Session, *, push: VendorPush, now: datetime) -> str:
    """Apply one stored push (once: an applied push is left alone); mark it applied unless its
    delivery is not known yet."""
    if push.applied_at is not None:
        return push.outcome or "already applied"
    try:
        outcome = apply_payload(session, push=push, now=now)
    except ReportFormatError as exc:
        outcome = malformed(push, exc)
    if outcome == ReportOutcome.UNMATCHED:
        push.outcome = outcome
        session.add(push)
    else:
        mark_push_applied(session, push=push, outcome=outcome, now=now)
    return outcome


Summary = Callable[[list[str]], str]


@dataclass(frozen=True)
class PushKind:
    """What comes to one callback address: `parse` turns a stored payload into its records
    (raising `ReportFormatError`), `summary` makes the push's outcome from theirs, in order."""

    parse: Callable[[dict[str, str]], Sequence[VendorNews]]
    summary: Summary


def one_record(outcomes: list[str]) -> str:
    (outcome,) = outcomes
    return outcome


def all_matched(outcome: str) -> Summary:
    """`outcome` once every record is applied; the push waits while any is unmatched."""

    def summary(outcomes: list[str]) -> str:
        return ReportOutcome.UNMATCHED if ReportOutcome.UNMATCHED in outcomes else outcome

    return summary


def counted(noun: str) -> Summary:
    """`<count> <noun>` once every record is applied; the push waits while any is unmatched."""

    def summary(outcomes: list[str]) -> str:
        if ReportOutcome.UNMATCHED in outcomes:
            return ReportOutcome.UNMATCHED
        return f"{len(outcomes)} {noun}"

    return summary


def parse_fivec_page(payload: dict[str, str]) -> list[DeliveryReport]:
    """A pulled 5C report page, stored by tasks.reports as base64 with its charset."""
    try:
        body = base64.b64decode(payload["body_base64"])
    except (KeyError, ValueError):  # binascii.Error is a ValueError
        raise ReportFormatError("body_base64 is missing or not base64") from None
    return fivec.parse_report_records(body, payload.get("encoding"))


def parse_chuangrui_mo(payload: dict[str, str]) -> list[InboundReply]:
    length = get_settings().chuangrui_system_extno_length
    return chuangrui.parse_mo_push(payload, system_extno_length=length)


PUSH_KINDS: dict[tuple[str, str], PushKind] = {
    ("veesing", "sms"): PushKind(lambda payload: [veesing.parse_push(payload)], one_record),
    ("veesing", "mms"): PushKind(lambda payload: [veesing_mms.parse_push(payload)], one_record),
    ("veesing", "voice"): PushKind(
        lambda payload: [veesing_voice.parse_receipt_push(payload)], one_record
    ),
    # One report naming several numbers: it waits while any of them is not matched yet.
    ("chuangrui", "report"): PushKind(chuangrui.parse_report_push, all_matched("applied")),
    ("chuangrui", "mo"): PushKind(parse_chuangrui_mo, counted("inbound stored")),
    ("fivec", "reports"): PushKind(parse_fivec_page, counted("reports applied")),
}
"""Every (vendor, kind) of push the API stores (its callback address) and how it is applied."""


def parse_push(push: VendorPush) -> tuple[PushKind, Sequence[VendorNews]]:
    """A push's kind (by the callback address it came to) and its records."""
    kind = PUSH_KINDS.get((push.vendor, push.kind))
    if kind is None:
        raise ReportFormatError(f"no parser for {push.vendor} {push.kind} pushes")
    return kind, kind.parse(push.payload)


def apply_payload(session: Session, *, push: VendorPush, now: datetime) -> str:
    """Apply one push by its vendor and kind (the callback address it came to)."""
    kind, records = parse_push(push)
    return kind.summary(apply_records(session, records=records, now=now))


def apply_records(session: Session, *, records: Sequence[VendorNews], now: datetime) -> list[str]:
    """Apply records in the order received, a chunk of RECORDS_PER_CHUNK at a time; their
    outcomes, in the same order.

    In each chunk, the first report of each delivery is settled in bulk with the others
    (`settle_reports`); what that does not settle, and every other record of the chunk, is
    then applied one record at a time in the chunk's order. That is the order's own result:
    records of different deliveries do not touch each other's rows, and a second report of one
    delivery comes after the first."""
    outcomes: list[str | None] = [None] * len(records)
    for start in range(0, len(records), RECORDS_PER_CHUNK):
        chunk = range(start, min(start + RECORDS_PER_CHUNK, len(records)))
        first: dict[ReportKey, tuple[int, DeliveryReport]] = {}
        for n in chunk:
            record = records[n]
            if isinstance(record, DeliveryReport):
                first.setdefault(report_key(record), (n, record))
        bulk = list(first.values())
        settled = settle_reports(session, reports=[report for _, report in bulk], now=now)
        for (n, _), done in zip(bulk, settled, strict=True):
            if done:
                outcomes[n] = ReportOutcome.APPLIED
        for n in chunk:
            if outcomes[n] is None:
                outcomes[n] = apply_record(session, record=records[n], now=now)
    applied = [outcome for outcome in outcomes if outcome is not None]
    assert len(applied) == len(records)
    return applied


def apply_record(session: Session, *, record: VendorNews, now: datetime) -> str:
    """Apply one record by what it tells."""
    match record:
        case DeliveryReport():
            return apply_report(session, report=record, now=now)
        case InboundReply():
            return store_inbound(session, reply=record, now=now)
        case AuditResult():
            return apply_audit(session, audit=record, now=now)


def apply_audit(session: Session, *, audit: AuditResult, now: datetime) -> str:
    """The vendor's audit of a created MMS: record it and move the jobs waiting on it."""
    if not decide_audit(
        session,
        vendor=audit.vendor,
        ref=audit.vendor_ref,
        approved=audit.approved,
        reason=audit.reason,
        now=now,
    ):
        return ReportOutcome.UNMATCHED
    released = settle_audits(session, now=now, timeout_s=get_settings().mms_audit_timeout_s)
    session.commit()
    for job_id in released:
        enqueue_send(job_id)
    return "approved" if audit.approved else "rejected"


def store_inbound(session: Session, *, reply: InboundReply, now: datetime) -> str:
    """Keep a reply; one that is an opt-out keyword suppresses the number's marketing."""
    add_inbound(
        session,
        vendor=reply.vendor,
        phone=reply.phone,
        content=reply.content,
        vendor_ref=reply.vendor_ref,
        received_at=reply.received_at,
        now=now,
    )
    if is_opt_out(reply.content):
        reason = f"replied {reply.content.strip()!r} via {reply.vendor}"
        suppress(session, phone=reply.phone, reason=reason, now=now)
        return "inbound stored; number suppressed"
    return "inbound stored"


def is_opt_out(content: str) -> bool:
    keywords = {k.strip().casefold() for k in get_settings().opt_out_keywords}
    return content.strip().casefold() in keywords
