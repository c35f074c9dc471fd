"""The store's tables (SQLModel) and the column types they share.

Every time is an aware UTC datetime (`UTCDateTime`); enums are stored as their values in plain
VARCHAR columns. A change here needs a migration in `worker/store/migrations/versions/`
(`alembic revision --autogenerate` writes its first draft).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from worker.enums import AuditStatus, CapPolicy, Channel, DeliveryStatus, Purpose
from worker.webhook_urls import CALLBACK_URL_MAX_CHARS


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no offset, so it is added back)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use an aware one")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _time_column(*, nullable: bool = True, index: bool = False) -> Any:
    return sa.Column(UTCDateTime(), nullable=nullable, index=index)


def _enum_column(enum: type[StrEnum]) -> Any:
    """Stored as its value in a VARCHAR (no native enum, no CHECK): new values need no migration."""
    return sa.Enum(
        enum,
        native_enum=False,
        create_constraint=False,
        length=16,
        values_callable=lambda members: [m.value for m in members],
    )


class Job(SQLModel, table=True):
    """What a producer asked for. `content` is the SMS text (for MMS its title, for voice its
    variables); `payload` holds the rest of an MMS or voice request; `content_ref` is the
    vendor's id for the content itself (a Veesing mmsId), shared by jobs of equal content."""

    __table_args__ = (
        # Newest first, page by page: `GET /v1/messages` walks this index (worker/store/search.py).
        sa.Index("ix_job_created_at_id", "created_at", "id"),
    )

    id: str = Field(default_factory=lambda: uuid.uuid4().hex, primary_key=True, max_length=32)
    channel: Channel = Field(sa_type=_enum_column(Channel))
    vendor: str = Field(max_length=32)
    purpose: Purpose = Field(default=Purpose.MARKETING, sa_type=_enum_column(Purpose))
    content: str
    payload: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    content_ref: str | None = Field(default=None, max_length=64, index=True)
    on_daily_cap: CapPolicy = Field(default=CapPolicy.DEFER, sa_type=_enum_column(CapPolicy))
    allow_failover: bool = True
    idempotency_key: str | None = Field(default=None, unique=True, max_length=128)
    send_at: datetime | None = Field(default=None, sa_column=_time_column())
    expires_at: datetime | None = Field(default=None, sa_column=_time_column())
    created_at: datetime = Field(default_factory=utcnow, sa_column=_time_column(nullable=False))
    enqueued_at: datetime | None = Field(default=None, sa_column=_time_column())
    error_attempts: int = 0
    api_key_name: str | None = Field(default=None, max_length=64)  # who asked: an API key, "cli"
    callback_url: str | None = Field(default=None, max_length=CALLBACK_URL_MAX_CHARS)
    """Where its recipients' status changes are POSTed (worker/webhooks.py); None: nowhere."""


class Delivery(SQLModel, table=True):
    """One recipient of a job. `text` is its own text (5C personalised MMS); `report_detail`
    keeps what a report says beyond its status (voice talk time and remark)."""

    __table_args__ = (
        # Reports name a vendor reference; a recipient not sent yet has none and no entry.
        sa.Index(
            "ix_delivery_report_key",
            "vendor",
            "channel",
            "vendor_ref",
            "phone",
            postgresql_where=sa.text("vendor_ref IS NOT NULL"),
            sqlite_where=sa.text("vendor_ref IS NOT NULL"),
        ),
        # Due release: only recipients that wait for a time have an entry.
        sa.Index(
            "ix_delivery_not_before",
            "not_before",
            postgresql_where=sa.text("not_before IS NOT NULL"),
            sqlite_where=sa.text("not_before IS NOT NULL"),
        ),
        # A job's recipients in job order, a page at a time (worker/store/search.py).
        sa.Index("ix_delivery_job_id_id", "job_id", "id"),
        # A job's counts by status (read from the index alone), its recipients in one status.
        sa.Index("ix_delivery_job_id_status_id", "job_id", "status", "id"),
        # The jobs that sent to one number.
        sa.Index("ix_delivery_phone", "phone"),
    )

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(foreign_key="job.id", max_length=32)  # indexed with id and status
    phone: str = Field(max_length=20)
    vendor: str = Field(max_length=32)
    channel: Channel = Field(sa_type=_enum_column(Channel))
    text: str | None = None
    send_alone: bool = False  # set after a batch was refused for one unnamed bad number
    status: DeliveryStatus = Field(sa_type=_enum_column(DeliveryStatus), index=True)
    vendor_ref: str | None = Field(default=None, max_length=64)
    vendor_status: str | None = Field(default=None, max_length=64)
    not_before: datetime | None = Field(default=None, sa_column=_time_column())
    claimed_at: datetime | None = Field(default=None, sa_column=_time_column())
    submitted_at: datetime | None = Field(default=None, sa_column=_time_column())
    reported_at: datetime | None = Field(default=None, sa_column=_time_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_time_column(nullable=False))
    last_error: str | None = None
    report_detail: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)


class DeliveryEvent(SQLModel, table=True):
    """One status change of one delivery: the history operators read."""

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="delivery.id", index=True)
    at: datetime = Field(default_factory=utcnow, sa_column=_time_column(nullable=False))
    from_status: str = Field(max_length=16)
    to_status: str = Field(max_length=16)
    detail: str | None = None


class VendorPush(SQLModel, table=True):
    """A push from a vendor (or a pulled report page), stored as received before it is applied.
    `digest` identifies its content: vendors retry pushes they think were
    lost, and a retry must not become a second reply or a second history entry.

    `ix_vendorpush_untried` holds only the pushes no applier has tried yet, which the appliers
    take oldest first: however many applied pushes the table keeps, that stays a short read."""

    __table_args__ = (
        sa.Index(
            "ix_vendorpush_untried",
            "id",
            postgresql_where=sa.text("applied_at IS NULL AND outcome IS NULL"),
            sqlite_where=sa.text("applied_at IS NULL AND outcome IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    vendor: str = Field(max_length=32)
    kind: str = Field(max_length=16)
    payload: dict[str, str] = Field(sa_type=sa.JSON)
    digest: str = Field(max_length=64, unique=True)
    received_at: datetime = Field(default_factory=utcnow, sa_column=_time_column(nullable=False))
    applied_at: datetime | None = Field(default=None, sa_column=_time_column(index=True))
    outcome: str | None = None


class InboundMessage(SQLModel, table=True):
    """A reply (MO) from a handset, pushed by a vendor."""

    id: int | None = Field(default=None, primary_key=True)
    vendor: str = Field(max_length=32)
    phone: str = Field(max_length=20, index=True)
    content: str
    vendor_ref: str | None = Field(default=None, max_length=64)
    received_at: datetime | None = Field(default=None, sa_column=_time_column())
    stored_at: datetime = Field(default_factory=utcnow, sa_column=_time_column(nullable=False))


class MmsContent(SQLModel, table=True):
    """An MMS content created at a vendor that audits it (Veesing `mmsApi/create`): one per
    distinct content, so many jobs of equal content share one mmsId and one audit."""

    __table_args__ = (sa.UniqueConstraint("vendor", "digest"),)

    id: int | None = Field(default=None, primary_key=True)
    vendor: str = Field(max_length=32)
    digest: str = Field(max_length=64)
    ref: str = Field(max_length=64, index=True)
    status: AuditStatus = Field(sa_type=_enum_column(AuditStatus))
    reason: str | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=_time_column(nullable=False))
    decided_at: datetime | None = Field(default=None, sa_column=_time_column())


class VendorBalance(SQLModel, table=True):
    """The last balance read from one vendor product (beat's balance poll, or `herald balance`)."""

    product: str = Field(primary_key=True, max_length=48)  # "veesing:sms", "fivec:mms", ...
    balance: str | None = Field(default=None, max_length=32)  # the vendor's number, verbatim
    checked_at: datetime = Field(default_factory=utcnow, sa_column=_time_column(nullable=False))
    error: str | None = None


class Suppression(SQLModel, table=True):
    """A number that asked for no more marketing (an opt-out reply, or an operator)."""

    phone: str = Field(primary_key=True, max_length=20)
    reason: str
    created_at: datetime = Field(default_factory=utcnow, sa_column=_time_column(nullable=False))


class ApiKey(SQLModel, table=True):
    """An API key made by `herald keys create`: only its SHA-256 is kept. A revoked key keeps
    its row, so its name is never given to another key and jobs still name who sent them."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    key_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_time_column(nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=_time_column())


class WebhookEndpoint(SQLModel, table=True):
    """One address jobs' status changes are POSTed to, and where its deliveries stand: one POST
    at a time per address (`leased_until`), retried from `next_attempt_at` while it fails."""

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=CALLBACK_URL_MAX_CHARS, unique=True)
    attempts: int = 0  # failed POSTs in a row
    failing_since: datetime | None = Field(default=None, sa_column=_time_column())
    next_attempt_at: datetime | None = Field(default=None, sa_column=_time_column())
    leased_until: datetime | None = Field(default=None, sa_column=_time_column())
    last_error: str | None = None
    delivered_at: datetime | None = Field(default=None, sa_column=_time_column())


class WebhookOutboxEntry(SQLModel, table=True):
    """A status change (a `DeliveryEvent`) still to be POSTed to its job's address. The row is
    deleted once the address answered 2xx, or once it is older than HERALD_WEBHOOK_RETRY_FOR_S
    and the address still fails."""

    __table_args__ = (sa.Index("ix_webhookoutboxentry_endpoint_event", "endpoint_id", "event_id"),)

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="deliveryevent.id", unique=True)
    endpoint_id: int = Field(foreign_key="webhookendpoint.id")
    created_at: datetime = Field(default_factory=utcnow, sa_column=_time_column(nullable=False))


class WebhookTail(SQLModel, table=True):
    """How far the webhook dispatcher has read the `DeliveryEvent`s (one row, id 1).

    `gaps` are ids below `last_event_id` not seen yet: on PostgreSQL an id is taken when its row
    is inserted, not when its transaction commits, so a lower id can become visible after a
    higher one. Each gap is `[first id, last id, POSIX time first missed]`, looked at again until
    it is filled or older than the longest a transaction can stay open."""

    id: int = Field(default=1, primary_key=True)
    last_event_id: int = 0
    gaps: list[list[float]] = Field(default_factory=list, sa_type=sa.JSON)
