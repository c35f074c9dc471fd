"""Apply the vendor pushes that the API stored: receipts settle deliveries, replies are kept.

The API commits each push as received (`VendorPush`) and enqueues `herald.apply_push` with its
id; the sweeper applies again any push that is still unapplied, so a push is never lost to a
worker that was down. Applying twice is harmless: a report only moves a delivery that is still
waiting for one.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session

from worker.app import app
from worker.errors import ReportFormatError
from worker.settings import get_settings
from worker.store import (
    DeliveryStatus,
    Report,
    ReportOutcome,
    VendorPush,
    add_inbound,
    apply_report,
    mark_push_applied,
    session_scope,
    suppress,
    utcnow,
)
from worker.vendors import veesing

log = logging.getLogger(__name__)


@app.task(name="herald.apply_push")
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
    """Apply one stored push; mark it applied unless its delivery is not known yet."""
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


def apply_payload(session: Session, *, push: VendorPush, now: datetime) -> str:
    if (push.vendor, push.kind) == ("veesing", "sms"):
        parsed = veesing.parse_push(push.payload)
        if isinstance(parsed, veesing.SmsReply):
            return store_inbound(
                session,
                vendor=push.vendor,
                phone=parsed.mobile,
                content=parsed.content,
                vendor_ref=parsed.task_id,
                received_at=parsed.receive_time,
                now=now,
            )
        report = Report(
            vendor=push.vendor,
            vendor_ref=parsed.task_id,
            phone=parsed.mobile,
            status=DeliveryStatus.DELIVERED if parsed.delivered else DeliveryStatus.UNDELIVERED,
            vendor_status=parsed.code,
            reported_at=parsed.receive_time,
        )
        return apply_report(session, report=report, now=now)
    raise ReportFormatError(f"no parser for {push.vendor} {push.kind} pushes")


def store_inbound(
    session: Session,
    *,
    vendor: str,
    phone: str,
    content: str,
    vendor_ref: str | None,
    received_at: datetime | None,
    now: datetime,
) -> str:
    """Keep a reply; one that is an opt-out keyword suppresses the number's marketing."""
    add_inbound(
        session,
        vendor=vendor,
        phone=phone,
        content=content,
        vendor_ref=vendor_ref,
        received_at=received_at,
        now=now,
    )
    if is_opt_out(content):
        suppress(session, phone=phone, reason=f"replied {content.strip()!r} via {vendor}", now=now)
        return "inbound stored; number suppressed"
    return "inbound stored"


def is_opt_out(content: str) -> bool:
    keywords = {k.strip().casefold() for k in get_settings().opt_out_keywords}
    return content.strip().casefold() in keywords
