"""Apply the vendor pushes that the API stored: receipts settle deliveries, replies are kept.

The API commits each push as received (`VendorPush`) and enqueues `herald.apply_push` with its
id; the sweeper applies again any push that is still unapplied, so a push is never lost to a
worker that was down. Applying twice is harmless: a report only moves a delivery that is still
waiting for one.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from worker.app import app
from worker.delivery_reports import AuditResult, DeliveryReport, InboundReply, VendorNews
from worker.errors import ReportFormatError
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
from worker.vendors import chuangrui, fivec, veesing, veesing_mms, veesing_voice

log = logging.getLogger(__name__)


@app.task(name=APPLY_PUSH_TASK)
def apply_push(push_id: int) -> str:
    with session_scope() as session:
        push = session.get(VendorPush, push_id)
        if push is None:
            log.error("apply_push: no push %s in the store", push_id)
            return "missing"
        if push.applied_at is not None:
            return "already applied"
        return apply_stored_push(session, push=push, now=utcnow())


def apply_stored_push(session: Session, *, push: VendorPush, now: datetime) -> str:
    """Apply one stored push (once: an applied push is left alone); mark it applied unless its
    delivery is not known yet."""
    if push.applied_at is not None:
        return push.outcome or "already applied"
    try:
        outcome = apply_payload(session, push=push, now=now)
    except ReportFormatError as exc:
        log.error("malformed %s %s push %s: %s", push.vendor, push.kind, push.id, exc)
        outcome = f"malformed: {exc}"
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


def apply_payload(session: Session, *, push: VendorPush, now: datetime) -> str:
    """Apply one push by its vendor and kind (the callback address it came to)."""
    kind = PUSH_KINDS.get((push.vendor, push.kind))
    if kind is None:
        raise ReportFormatError(f"no parser for {push.vendor} {push.kind} pushes")
    records = kind.parse(push.payload)
    return kind.summary([apply_record(session, record=record, now=now) for record in records])


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
