"""The words jobs and deliveries are described with: channels, statuses, purposes, policies.

Plain `StrEnum`s with no database behind them, so the request models, the vendors' report records
and the store all share them; each member carries a one-line note on what it means. The delivery
state machine they take part in is drawn in docs/design.md.
"""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    SMS = "sms"
    MMS = "mms"
    VOICE = "voice"


class DeliveryStatus(StrEnum):
    SCHEDULED = "scheduled"  # waits in the store for the job's send_at
    QUEUED = "queued"  # sendable now; a send task for its job is in the broker
    CLAIMED = "claimed"  # taken by a worker that has not called the vendor yet
    AWAITING_AUDIT = "awaiting_audit"  # the vendor reviews the MMS content before it may go
    DEFERRED = "deferred"  # waits for not_before: a vendor limit, or a retry after a passing error
    SENDING = "sending"  # claimed by a worker; the vendor call may be under way
    SUBMITTED = "submitted"  # the vendor took it (vendor_ref set); waiting for its report
    DELIVERED = "delivered"  # final: the handset received it (vendor report)
    UNDELIVERED = "undelivered"  # final: the vendor reported failure (vendor_status kept)
    FAILED = "failed"  # final: never taken by the vendor; last_error says why
    UNKNOWN = "unknown"  # ambiguous: may have reached the vendor; not resent by default
    CANCELLED = "cancelled"  # final: cancelled before it reached the vendor


UNSENT = (
    DeliveryStatus.SCHEDULED,
    DeliveryStatus.QUEUED,
    DeliveryStatus.DEFERRED,
    DeliveryStatus.CLAIMED,
    DeliveryStatus.AWAITING_AUDIT,
)
FINAL = (
    DeliveryStatus.DELIVERED,
    DeliveryStatus.UNDELIVERED,
    DeliveryStatus.FAILED,
    DeliveryStatus.CANCELLED,
)
REPORTABLE = (DeliveryStatus.SENDING, DeliveryStatus.SUBMITTED, DeliveryStatus.UNKNOWN)
"""Statuses a vendor report may settle (a report can beat our own `submitted` commit)."""


class Purpose(StrEnum):
    """Why a job is sent: opted-out numbers get no marketing; codes always go through."""

    MARKETING = "marketing"  # promotions: never sent to a suppressed number
    NOTIFICATION = "notification"  # transactional notices: sent regardless of opt-out
    VERIFICATION = "verification"  # one-time codes: sent regardless of opt-out


class CapPolicy(StrEnum):
    """What a job does when a daily cap (of a number or of the account) stops it."""

    DEFER = "defer"  # wait for the vendor's next day (00:00 Asia/Shanghai)
    FAILOVER = "failover"  # go through another vendor of the channel; defer when there is none
    FAIL = "fail"  # give up on those recipients, saying why


DEFAULT_CAP_POLICY = {
    "sms": CapPolicy.FAILOVER,  # most SMS are time-bound; a second vendor is the usual setup
    "mms": CapPolicy.DEFER,  # campaigns: tomorrow is fine, and 5C's limits differ from Veesing's
    "voice": CapPolicy.FAIL,  # a voice code tomorrow is worthless, and no other vendor speaks
}


class JobStatus(StrEnum):
    """A job's status, derived from its deliveries by `job_status`."""

    SCHEDULED = "scheduled"  # every open recipient waits for send_at
    QUEUED = "queued"  # some recipient waits to be sent
    SUBMITTED = "submitted"  # all sent (or ambiguous); waiting for reports
    COMPLETED = "completed"  # every recipient is final
    CANCELLED = "cancelled"  # every recipient was cancelled


class AuditStatus(StrEnum):
    PENDING = "pending"  # submitted; the vendor has not pushed its audit result
    APPROVED = "approved"  # may be sent, as often as wanted
    REJECTED = "rejected"  # refused by the vendor's audit; reason says why
