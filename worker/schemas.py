"""What herald shows of its jobs and records: the HTTP API's answers and the CLI's `--json`.

One set of models for both, so a script reads the same document from `GET /v1/messages/{id}`
and from `herald status ID --json`. Times are ISO 8601 in UTC.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from worker.enums import JobStatus


class JobAccepted(BaseModel):
    id: str
    status: JobStatus


class RecipientPublic(BaseModel):
    phone: str
    status: str
    text: str | None
    vendor_status: str | None
    vendor_ref: str | None
    submitted_at: datetime | None
    reported_at: datetime | None
    last_error: str | None
    report_detail: dict[str, object] | None


class JobPublic(BaseModel):
    id: str
    channel: str
    vendor: str
    status: JobStatus
    content: str
    content_ref: str | None
    purpose: str
    created_at: datetime
    send_at: datetime | None
    expires_at: datetime | None
    recipients: list[RecipientPublic]


class SuppressionPublic(BaseModel):
    phone: str
    reason: str
    created_at: datetime


class InboundPublic(BaseModel):
    id: int
    vendor: str
    phone: str
    content: str
    vendor_ref: str | None
    received_at: datetime | None
    stored_at: datetime


class ProductPublic(BaseModel):
    product: str
    vendor: str
    channel: str
    configured: bool
    balance: str | None
    checked_at: datetime | None
    error: str | None
    low: bool


class BalanceRead(BaseModel):
    """A product's balance as `herald balance` asked for it: `fresh` when read since it asked."""

    balance: str | None
    checked_at: datetime | None
    error: str | None
    fresh: bool


class VendorReport(BaseModel):
    """One delivery report as a vendor's report query lists it (`herald reports`)."""

    msgid: str
    mobile: str
    status: str
    reported_at: datetime
    extno: str | None
