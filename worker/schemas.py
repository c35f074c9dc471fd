"""What herald shows of its jobs and records: the HTTP API's answers and the CLI's `--json`.

One set of models for both, so a script reads the same document from `GET /v1/messages/{id}`
and from `herald status ID --json`. Times are ISO 8601 in UTC (people read them in the display
zone instead: worker/display.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from worker.enums import DeliveryStatus, JobStatus

EXAMPLE_JOB_ID = "3f2a9c0e8b7d4e1f9a6b5c4d3e2f1a0b"
JobId = Annotated[str, Field(description="The job's id.", examples=[EXAMPLE_JOB_ID])]
FIRST_RECIPIENTS = 100
"""How many recipients `GET /v1/messages/{id}` lists itself: a job may have 100,000."""
Phone = Annotated[
    str, Field(description="A mainland China mobile number, 11 digits.", examples=["13800138000"])
]


class JobAccepted(BaseModel):
    """A job as accepted (202) or cancelled (200): stored before this answer was sent."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"id": "3f2a9c0e8b7d4e1f9a6b5c4d3e2f1a0b", "status": "queued"}]
        }
    )

    id: JobId
    status: JobStatus = Field(
        description="scheduled (waits for send_at), queued, submitted, completed or cancelled.",
        examples=["queued"],
    )


class RecipientPublic(BaseModel):
    """One number of a job and how far its message got."""

    phone: Phone
    status: str = Field(
        description="scheduled, queued, claimed, awaiting_audit, deferred, sending, submitted; "
        "final: delivered, undelivered, failed, cancelled; unknown: may have reached the vendor.",
        examples=["delivered"],
    )
    text: str | None = Field(
        description="This number's own text (5C personalised MMS); null for the others.",
        examples=[None],
    )
    vendor_status: str | None = Field(
        description="The status code of the vendor's delivery report, verbatim.",
        examples=["DELIVRD"],
    )
    vendor_ref: str | None = Field(
        description="The vendor's reference for the call that carried it.", examples=["162538"]
    )
    submitted_at: datetime | None = Field(
        description="When the vendor took it (ISO 8601, UTC).", examples=["2026-11-11T02:00:01Z"]
    )
    reported_at: datetime | None = Field(
        description="When the vendor's report says it ended (ISO 8601, UTC).",
        examples=["2026-11-11T02:00:09Z"],
    )
    last_error: str | None = Field(
        description="Why it was deferred or failed, in the vendor's or herald's words.",
        examples=[None],
    )
    report_detail: dict[str, object] | None = Field(
        description="What a report says beyond its status (voice: talk time and remark).",
        examples=[None],
    )


Counts = Annotated[
    dict[DeliveryStatus, int],
    Field(
        description="How many recipients are in each status; statuses no recipient is in are "
        "left out.",
        examples=[{"delivered": 2, "submitted": 1}],
    ),
]
Progress = Annotated[
    float,
    Field(
        ge=0,
        le=100,
        description="The share of recipients in a final status (delivered, undelivered, "
        "failed, cancelled), in percent, rounded down to a tenth: 100 only when every one is "
        "final. `unknown` is not final.",
        examples=[66.6],
    ),
]
NextCursor = Annotated[
    str | None,
    Field(
        description="Give it as `after` for the next page; null on the last page.",
        examples=[None],
    ),
]


class JobSummary(BaseModel):
    """A job with its counts by status and its progress, without its recipients
    (`GET /v1/messages`)."""

    id: JobId
    channel: str = Field(description="sms, mms or voice.", examples=["sms"])
    vendor: str = Field(
        description="The vendor the job was sent through first: veesing, chuangrui or fivec.",
        examples=["veesing"],
    )
    status: JobStatus = Field(
        description="Derived from the recipients: scheduled, queued, submitted, completed "
        "(every recipient final) or cancelled.",
        examples=["completed"],
    )
    content: str = Field(
        description="The SMS text; an MMS's title; a voice call's variables.",
        examples=["【Herald】您的订单已发货"],
    )
    content_ref: str | None = Field(
        description="The vendor's id of the content itself (a Veesing MMS id), once created.",
        examples=[None],
    )
    purpose: str = Field(
        description="marketing, notification or verification.", examples=["notification"]
    )
    idempotency_key: str | None = Field(
        description="The key the producer gave when sending it, if any.", examples=["order-7"]
    )
    created_at: datetime = Field(
        description="When the job was accepted (ISO 8601, UTC).",
        examples=["2026-11-11T02:00:00Z"],
    )
    send_at: datetime | None = Field(
        description="Not sent before this time (ISO 8601, UTC); null: at once.", examples=[None]
    )
    expires_at: datetime | None = Field(
        description="Never sent after this time (ISO 8601, UTC); null: no limit.",
        examples=[None],
    )
    callback_url: str | None = Field(
        description="Where the recipients' status changes are POSTed (README, Webhooks); "
        "null: nowhere.",
        examples=["https://app.example/herald/status"],
    )
    total: int = Field(description="How many recipients the job has.", examples=[3])
    counts: Counts
    progress: Progress


class JobPublic(JobSummary):
    """A job, its counts by status, its progress and the first page of its recipients
    (`GET /v1/messages/{job_id}`)."""

    recipients: list[RecipientPublic] = Field(
        description=f"The first {FIRST_RECIPIENTS} recipients, in job order; the others are "
        "read a page at a time from `GET /v1/messages/{job_id}/recipients`."
    )
    recipients_next: NextCursor = Field(
        description="When the job has more recipients than listed: give it as `after` to "
        "`GET /v1/messages/{job_id}/recipients` for the next page; null when all are listed.",
        examples=[None],
    )


class JobPage(BaseModel):
    """One page of jobs, newest first (`GET /v1/messages`)."""

    jobs: list[JobSummary] = Field(description="The jobs of this page, newest first.")
    next: NextCursor


class RecipientPage(BaseModel):
    """One page of a job's recipients, in job order (`GET /v1/messages/{job_id}/recipients`)."""

    job_id: JobId
    recipients: list[RecipientPublic] = Field(description="The recipients of this page.")
    next: NextCursor


class SuppressionPublic(BaseModel):
    """A number that receives no marketing."""

    phone: Phone
    reason: str = Field(
        description="Why: the opt-out reply, or what the operator wrote.",
        examples=["replied TD"],
    )
    created_at: datetime = Field(
        description="When it was suppressed (ISO 8601, UTC).", examples=["2026-11-11T02:00:00Z"]
    )


class InboundPublic(BaseModel):
    """A reply or MO message from a handset, as a vendor pushed it."""

    id: int = Field(description="herald's id of the message.", examples=[1])
    vendor: str = Field(description="The vendor that pushed it.", examples=["veesing"])
    phone: Phone
    content: str = Field(description="What the handset sent.", examples=["TD"])
    vendor_ref: str | None = Field(
        description="The vendor's reference of the message, when it gives one.", examples=[None]
    )
    received_at: datetime | None = Field(
        description="When the vendor says the handset sent it (ISO 8601, UTC).",
        examples=["2026-11-11T02:05:00Z"],
    )
    stored_at: datetime = Field(
        description="When herald stored it (ISO 8601, UTC).", examples=["2026-11-11T02:05:01Z"]
    )


class ProductPublic(BaseModel):
    """One vendor product (`vendor:channel`), whether herald can use it, and its balance."""

    product: str = Field(description="vendor:channel.", examples=["veesing:sms"])
    vendor: str = Field(description="veesing, chuangrui or fivec.", examples=["veesing"])
    channel: str = Field(description="sms, mms or voice.", examples=["sms"])
    configured: bool = Field(
        description="Whether the settings hold the vendor's credentials.", examples=[True]
    )
    balance: str | None = Field(
        description="The last balance read, as the vendor wrote it; null before the first read.",
        examples=["52310"],
    )
    checked_at: datetime | None = Field(
        description="When it was read (ISO 8601, UTC).", examples=["2026-11-11T02:00:00Z"]
    )
    error: str | None = Field(description="Why the last read failed.", examples=[None])
    low: bool = Field(
        description="Below HERALD_BALANCE_WARN_BELOW for this product.", examples=[False]
    )


class BalanceRead(BaseModel):
    """A product's balance as `herald balance` asked for it: `fresh` when read since it asked."""

    balance: str | None = Field(description="The balance, as the vendor wrote it.")
    checked_at: datetime | None = Field(description="When it was read (ISO 8601, UTC).")
    error: str | None = Field(description="Why the read failed.")
    fresh: bool = Field(description="Read since `herald balance` asked.")


class VendorReport(BaseModel):
    """One delivery report as a vendor's report query lists it (`herald reports`)."""

    msgid: str = Field(description="The vendor's reference of the call.")
    mobile: str = Field(description="The number.")
    status: str = Field(description="The vendor's status code, verbatim.")
    reported_at: datetime = Field(description="When the report says the message ended.")
    extno: str | None = Field(description="The extension number the message went out with.")
