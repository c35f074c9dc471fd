"""Delivery reports: a vendor's word on one phone of one batch, applied to the delivery it names.

The input is the vendor-neutral `DeliveryReport` of worker/delivery_reports.py; `apply_report`
matches it (vendor + vendor_ref + phone) and moves the delivery forward, and `ReportOutcome` says
what happened.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from worker.delivery_reports import DeliveryReport
from worker.enums import FINAL, REPORTABLE, DeliveryStatus
from worker.store.deliveries import ids_in, move_deliveries
from worker.store.models import Delivery


class ReportOutcome(StrEnum):
    APPLIED = "applied"  # a delivery moved to the reported status
    REPEATED = "repeated"  # the delivery had already left the states a report may settle
    UNMATCHED = "unmatched"  # no delivery has that vendor_ref and phone (yet)


def apply_report(session: Session, *, report: DeliveryReport, now: datetime) -> ReportOutcome:
    """Settle the delivery the report names, matching on vendor + vendor_ref + phone.

    Statuses only move forward: a report settles a delivery waiting for one, and changes a final
    status only when it is itself final and reported later than the one applied (both kept in
    the delivery's history). A repeated or older report changes nothing.

    A delivery the worker lost track of (it died after the vendor took the batch, before
    `submitted` was committed, so no vendor_ref was stored) is matched when it is the only
    `sending`/`unknown` delivery without a ref for that phone and vendor.
    """
    same_vendor = sa.and_(
        col(Delivery.vendor) == report.vendor, col(Delivery.channel) == report.channel
    )
    by_ref = sa.and_(
        same_vendor,
        col(Delivery.vendor_ref) == report.vendor_ref,
        col(Delivery.phone) == report.phone,
    )
    values: dict[str, Any] = {
        "vendor_status": report.vendor_status,
        "reported_at": report.reported_at or now,
        "vendor_ref": report.vendor_ref,
    }
    if report.detail is not None:
        values["report_detail"] = report.detail
    detail = f"report {report.vendor_status or report.status.value}"
    if move_deliveries(
        session,
        where=by_ref,
        from_statuses=REPORTABLE,
        to=report.status,
        now=now,
        detail=detail,
        **values,
    ):
        return ReportOutcome.APPLIED
    if report.status in FINAL and report.reported_at is not None:
        later = sa.or_(
            col(Delivery.reported_at).is_(None), col(Delivery.reported_at) < report.reported_at
        )
        if move_deliveries(
            session,
            where=sa.and_(by_ref, later, col(Delivery.status) != report.status),
            from_statuses=[DeliveryStatus.DELIVERED, DeliveryStatus.UNDELIVERED],
            to=report.status,
            now=now,
            detail=detail + " (a later final report)",
            **values,
        ):
            return ReportOutcome.APPLIED
    if session.exec(select(Delivery.id).where(by_ref)).first() is not None:
        return ReportOutcome.REPEATED
    orphans = list(
        session.exec(
            select(Delivery.id).where(
                same_vendor,
                col(Delivery.phone) == report.phone,
                col(Delivery.vendor_ref).is_(None),
                col(Delivery.status).in_([DeliveryStatus.SENDING, DeliveryStatus.UNKNOWN]),
            )
        )
    )
    if len(orphans) == 1 and move_deliveries(
        session,
        where=ids_in(orphans),
        from_statuses=REPORTABLE,
        to=report.status,
        now=now,
        detail=detail + " (matched by phone: the batch id was never stored)",
        **values,
    ):
        return ReportOutcome.APPLIED
    return ReportOutcome.UNMATCHED
