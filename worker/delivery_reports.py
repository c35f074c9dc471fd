"""What vendors tell us about our messages, one vendor-neutral record per kind of news.

Every adapter's push and report parser returns these, whatever the vendor's own fields:

- `DeliveryReport`: the fate of one message to one phone (a receipt push, a pulled report);
- `InboundReply`: what a handset's owner wrote back (an MO);
- `AuditResult`: a vendor's review of a content before it may be sent (Veesing MMS).

A vendor's report word becomes a `DeliveryStatus` here too, the same for every vendor. The
carriers' words (CMPP/SGIP gateway states) reach us through Chuangrui's pushes and 5C's report
pull; Veesing pushes a 1/0 status beside its code. One table for all of them:

    DELIVRD                                       → delivered
    UNDELIV, EXPIRED, REJECTD, DTBLACK, REJECT    → undelivered (the word kept as vendor_status)
    UNKNOWN, and any other word                   → unknown (kept verbatim; a later report may
                                                    still settle it)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from worker.enums import Channel, DeliveryStatus

DELIVERED_WORDS = frozenset({"DELIVRD"})
UNDELIVERED_WORDS = frozenset({"UNDELIV", "EXPIRED", "REJECTD", "DTBLACK", "REJECT"})


def status_from_word(word: str) -> DeliveryStatus:
    normalised = word.strip().upper()
    if normalised in DELIVERED_WORDS:
        return DeliveryStatus.DELIVERED
    if normalised in UNDELIVERED_WORDS:
        return DeliveryStatus.UNDELIVERED
    return DeliveryStatus.UNKNOWN


def status_from_flag(delivered: bool) -> DeliveryStatus:
    """Veesing's receipts: status 1 is delivered, 0 is not; the code rides along verbatim."""
    return DeliveryStatus.DELIVERED if delivered else DeliveryStatus.UNDELIVERED


@dataclass(frozen=True)
class DeliveryReport:
    """A vendor's delivery report for one phone of one vendor batch, from a push or a pull.

    `vendor_ref` names the batch as the vendor answered the send; `vendor_status` is the
    vendor's own word or code, verbatim. `detail` is what the report says beyond its status that
    the store keeps with the delivery (voice talk time and remark); `extras` is what the vendor's
    record adds that herald does not keep (5C's extension and serial), for operators' tools.
    """

    vendor: str
    channel: Channel
    vendor_ref: str
    phone: str
    status: DeliveryStatus
    vendor_status: str | None
    reported_at: datetime | None
    detail: dict[str, Any] | None = None
    extras: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class InboundReply:
    """What a handset's owner sent back (MO). `vendor_ref` ties it to what it answers: the
    batch (Veesing's taskid) or the extension we sent with (Chuangrui's custom extno);
    `extras` is what herald does not keep (Chuangrui's system extension)."""

    vendor: str
    phone: str
    content: str
    vendor_ref: str | None
    received_at: datetime | None
    extras: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditResult:
    """A vendor's review of a content before it may be sent: approved, or refused with `reason`
    (e.g. 内容不合规). `vendor_ref` is the id the vendor's push names (Veesing's `taskId`), matched
    against the audited content's ref in the store."""

    vendor: str
    vendor_ref: str
    approved: bool
    reason: str | None


VendorNews = DeliveryReport | InboundReply | AuditResult
"""Any record a push or a report pull turns into."""
