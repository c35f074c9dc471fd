"""Helpers for the tasks: which vendor a recipient goes through (breakers, failover, and the
daily-cap policy).

A job names a vendor; its recipients may move to another vendor of the same channel (SMS:
Veesing ↔ Chuangrui; MMS: Veesing ↔ 5C) when that vendor refuses the account (its breaker is
open) or when a daily cap stops them and the job's policy says `failover`. A recipient fails
over once, away from the job's own vendor, so two vendors that both refuse cannot bounce it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session

from worker.breaker import open_breaker, open_reason
from worker.enums import Channel, DeliveryStatus
from worker.errors import InvalidInput, VendorBlocked
from worker.mms import MMS_VALIDATORS, mms_from_payload
from worker.redis_client import redis_client
from worker.settings import (
    MMS_VENDORS,
    SMS_VENDORS,
    VOICE_VENDORS,
    get_settings,
    vendor_configured,
)
from worker.store import Job, ids_in, move_deliveries

log = logging.getLogger(__name__)

VENDORS_BY_CHANNEL = {
    Channel.SMS: SMS_VENDORS,
    Channel.MMS: MMS_VENDORS,
    Channel.VOICE: VOICE_VENDORS,
}


def breaker_reason(vendor: str, channel: Channel) -> str | None:
    return open_reason(redis_client(), vendor=vendor, channel=channel.value)


def failover_target(job: Job, current: str) -> str | None:
    """Another configured vendor of the job's channel that is up and can carry its content;
    None when the job forbids failover or the recipients already left the job's vendor."""
    if not job.allow_failover or current != job.vendor:
        return None
    for vendor in VENDORS_BY_CHANNEL[job.channel]:
        if vendor == current or not vendor_configured(vendor):
            continue
        if breaker_reason(vendor, job.channel) is None and carries(job, vendor):
            return vendor
    return None


def carries(job: Job, vendor: str) -> bool:
    """Whether `vendor` can send this job's content as it is."""
    if job.channel is not Channel.MMS:
        return True
    payload = job.payload or {}
    if "picture" in payload:  # a personalised batch exists only at 5C
        return vendor == "fivec"
    try:
        MMS_VALIDATORS[vendor](mms_from_payload(payload))
    except InvalidInput:
        return False
    return True


def move_to_vendor(
    session: Session,
    *,
    delivery_ids: Sequence[int | None],
    from_statuses: Sequence[DeliveryStatus],
    vendor: str,
    reason: str,
    now: datetime,
) -> list[int]:
    """Queue recipients again through another vendor, recording why."""
    detail = f"failed over to {vendor}: {reason}"
    log.warning("%d recipients %s", len(delivery_ids), detail)
    return move_deliveries(
        session,
        where=ids_in(delivery_ids),
        from_statuses=from_statuses,
        to=DeliveryStatus.QUEUED,
        now=now,
        detail=detail,
        vendor=vendor,
        not_before=None,
        last_error=detail,
    )


def trip_breaker(job: Job, vendor: str, error: VendorBlocked) -> None:
    """Stop the whole fleet calling a vendor product that refuses the account, and alert."""
    cooldown_s = get_settings().vendor_blocked_cooldown_s
    open_breaker(
        redis_client(),
        vendor=vendor,
        channel=job.channel.value,
        cooldown_s=cooldown_s,
        reason=error.reply,
    )
    log.error(
        "ALERT vendor %s %s refuses the account (%s): no calls for %.0f s",
        vendor,
        job.channel.value,
        error.reply,
        cooldown_s,
        extra={"job_id": job.id, "vendor": vendor, "error_class": type(error).__name__},
    )
