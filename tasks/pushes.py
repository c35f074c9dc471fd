"""Apply the vendor pushes that the API stored: receipts settle deliveries, replies are kept.

The API commits each push as received (`VendorPush`) and enqueues `herald.apply_push` with its
id; the sweeper applies again any push that is still unapplied, so a push is never lost to a
worker that was down. Applying twice is harmless: a report only moves a delivery that is still
waiting for one.
"""

from __future__ import annotations

import base64
import logging
from datetime import datetime

from sqlmodel import Session

from worker.app import app
from worker.enums import Channel
from worker.errors import ReportFormatError
from worker.names import APPLY_PUSH_TASK
from worker.producer import enqueue_send
from worker.reports import status_from_flag, status_from_word
from worker.settings import get_settings
from worker.store import (
    Report,
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


def apply_payload(session: Session, *, push: VendorPush, now: datetime) -> str:
    """Apply one push by its vendor and kind (the callback address it came to)."""
    match (push.vendor, push.kind):
        case ("veesing", "sms"):
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
            return apply_report(
                session,
                report=Report(
                    push.vendor,
                    Channel.SMS,
                    parsed.task_id,
                    parsed.mobile,
                    status_from_flag(parsed.delivered),
                    parsed.code,
                    parsed.receive_time,
                ),
                now=now,
            )
        case ("veesing", "mms"):
            mms_push = veesing_mms.parse_push(push.payload)
            if isinstance(mms_push, veesing_mms.MmsAudit):
                return apply_audit(session, audit=mms_push, now=now)
            return apply_report(
                session,
                report=Report(
                    push.vendor,
                    Channel.MMS,
                    mms_push.task_id,
                    mms_push.mobile,
                    status_from_flag(mms_push.delivered),
                    None,
                    mms_push.receive_time,
                ),
                now=now,
            )
        case ("veesing", "voice"):
            call = veesing_voice.parse_receipt_push(push.payload)
            detail = {"talk_time_s": call.talk_time_s, "remark": call.remark}
            return apply_report(
                session,
                report=Report(
                    push.vendor,
                    Channel.VOICE,
                    call.task_id,
                    call.mobile,
                    status_from_flag(call.delivered),
                    call.code,
                    call.receive_time,
                    detail,
                ),
                now=now,
            )
        case ("chuangrui", "report"):
            state = chuangrui.parse_report_push(push.payload)
            outcomes = {
                apply_report(
                    session,
                    report=Report(
                        push.vendor,
                        Channel.SMS,
                        state.send_id,
                        mobile,
                        status_from_word(state.state),
                        state.state,
                        state.time,
                    ),
                    now=now,
                )
                for mobile in state.mobiles
            }
            # Wait for the whole push while any of its numbers is not matched yet.
            return ReportOutcome.UNMATCHED if ReportOutcome.UNMATCHED in outcomes else "applied"
        case ("fivec", "reports"):
            records = fivec.parse_report_records(
                base64.b64decode(push.payload["body_base64"]), push.payload.get("encoding")
            )
            outcomes = {
                apply_report(
                    session,
                    report=Report(
                        push.vendor,
                        Channel.MMS,
                        record.msgid,
                        record.mobile,
                        status_from_word(record.status),
                        record.status,
                        record.reported_at,
                    ),
                    now=now,
                )
                for record in records
            }
            if ReportOutcome.UNMATCHED in outcomes:
                return ReportOutcome.UNMATCHED
            return f"{len(records)} reports applied"
        case ("chuangrui", "mo"):
            uplinks = chuangrui.parse_mo_push(
                push.payload, system_extno_length=get_settings().chuangrui_system_extno_length
            )
            for uplink in uplinks:
                store_inbound(
                    session,
                    vendor=push.vendor,
                    phone=uplink.mobile,
                    content=uplink.content,
                    vendor_ref=uplink.custom_extno or None,
                    received_at=uplink.time,
                    now=now,
                )
            return f"{len(uplinks)} inbound stored"
    raise ReportFormatError(f"no parser for {push.vendor} {push.kind} pushes")


def apply_audit(session: Session, *, audit: veesing_mms.MmsAudit, now: datetime) -> str:
    """The vendor's audit of a created MMS: record it and move the jobs waiting on it."""
    if not decide_audit(
        session,
        vendor="veesing",
        ref=audit.task_id,
        approved=audit.approved,
        reason=audit.message,
        now=now,
    ):
        return ReportOutcome.UNMATCHED
    released = settle_audits(session, now=now, timeout_s=get_settings().mms_audit_timeout_s)
    session.commit()
    for job_id in released:
        enqueue_send(job_id)
    return "approved" if audit.approved else "rejected"


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
