"""The job store: SQLModel tables and the only code that changes a delivery's status.

A *job* is what a producer asked for (one content, many recipients); a *delivery* is one
recipient of a job and carries the state machine below. Every status change goes through
`move_deliveries`, a conditional UPDATE that also writes one `DeliveryEvent` per row it changed, so
two processes racing for the same rows cannot both win and every change is on record.

    scheduled ──► queued ──► claimed ──► sending ──► submitted ──► delivered / undelivered
        │            ▲  │       │          │  │          │
        │            │  ▼       │          │  └► unknown ─┘ (a report settles it)
        │         deferred ◄────┴──────────┘
        └──► cancelled (from any unsent state)      failed (from any unsent state)

`claimed` and `sending` are two steps on purpose: a worker that dies holding `claimed` rows has
not called the vendor, so the sweeper queues them again; one that dies with rows `sending` may
have, so they become `unknown`. The second step is one more UPDATE per batch.

Works on SQLite (WAL, busy timeout) and PostgreSQL; all times are stored as UTC.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, create_engine, select

from worker.delivery_reports import DeliveryReport
from worker.enums import (
    DEFAULT_CAP_POLICY,
    FINAL,
    REPORTABLE,
    UNSENT,
    AuditStatus,
    CapPolicy,
    Channel,
    DeliveryStatus,
    JobStatus,
    Purpose,
)
from worker.limits import DayCounts
from worker.settings import get_settings


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


class Delivery(SQLModel, table=True):
    """One recipient of a job. `text` is its own text (5C personalised MMS); `report_detail`
    keeps what a report says beyond its status (voice talk time and remark)."""

    __table_args__ = (
        sa.Index("ix_delivery_report_key", "vendor", "channel", "vendor_ref", "phone"),
    )

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(foreign_key="job.id", index=True, max_length=32)
    phone: str = Field(max_length=20)
    vendor: str = Field(max_length=32)
    channel: Channel = Field(sa_type=_enum_column(Channel))
    text: str | None = None
    send_alone: bool = False  # set after a batch was refused for one unnamed bad number
    status: DeliveryStatus = Field(sa_type=_enum_column(DeliveryStatus), index=True)
    vendor_ref: str | None = Field(default=None, max_length=64)
    vendor_status: str | None = Field(default=None, max_length=64)
    not_before: datetime | None = Field(default=None, sa_column=_time_column(index=True))
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
    """A push from a vendor (or a pulled report page), stored as received before it is applied
    (DESIGN contract 5). `digest` identifies its content: vendors retry pushes they think were
    lost, and a retry must not become a second reply or a second history entry."""

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


# --- engine and sessions -------------------------------------------------------------------

_engine: Engine | None = None
_engine_pid: int | None = None


def get_engine() -> Engine:
    """This process's engine, made on first use (never inherited across a fork)."""
    global _engine, _engine_pid
    if _engine is None or _engine_pid != os.getpid():
        _engine = make_engine(get_settings().store_url)
        _engine_pid = os.getpid()
    return _engine


def reset_engine() -> None:
    """Close this process's engine; the next `get_engine` reads the settings again."""
    global _engine, _engine_pid
    if _engine is not None:
        _engine.dispose()
    _engine = _engine_pid = None


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_tables(engine: Engine | None = None) -> None:
    SQLModel.metadata.create_all(engine or get_engine())


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session that commits when the block ends normally and rolls back otherwise."""
    with Session(get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


# --- jobs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewJob:
    """A validated request, ready to store."""

    channel: Channel
    vendor: str
    content: str
    phones: Sequence[str]
    purpose: Purpose = Purpose.MARKETING
    payload: dict[str, Any] | None = None
    texts: Mapping[str, str] | None = None
    on_daily_cap: CapPolicy | None = None
    allow_failover: bool = True
    send_at: datetime | None = None
    expires_at: datetime | None = None
    idempotency_key: str | None = None


def create_job(session: Session, *, new: NewJob, now: datetime) -> tuple[Job, bool]:
    """Store a job and its deliveries; return `(job, created)`.

    With an idempotency key already used, returns the first job and `created=False`.
    """
    if new.idempotency_key is not None:
        existing = job_by_idempotency_key(session, key=new.idempotency_key)
        if existing is not None:
            return existing, False
    scheduled = new.send_at is not None and new.send_at > now
    job = Job(
        channel=new.channel,
        vendor=new.vendor,
        purpose=new.purpose,
        content=new.content,
        payload=new.payload,
        on_daily_cap=new.on_daily_cap or DEFAULT_CAP_POLICY[new.channel.value],
        allow_failover=new.allow_failover,
        idempotency_key=new.idempotency_key,
        send_at=new.send_at,
        expires_at=new.expires_at,
        created_at=now,
        enqueued_at=None if scheduled else now,
    )
    status = DeliveryStatus.SCHEDULED if scheduled else DeliveryStatus.QUEUED
    session.add(job)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        assert new.idempotency_key is not None
        existing = job_by_idempotency_key(session, key=new.idempotency_key)
        if existing is None:
            raise
        return existing, False
    session.add_all(
        Delivery(
            job_id=job.id,
            phone=phone,
            vendor=new.vendor,
            channel=new.channel,
            text=new.texts.get(phone) if new.texts else None,
            status=status,
            not_before=new.send_at if scheduled else None,
            updated_at=now,
        )
        for phone in new.phones
    )
    return job, True


def job_by_idempotency_key(session: Session, *, key: str) -> Job | None:
    return session.exec(select(Job).where(Job.idempotency_key == key)).first()


def get_job(session: Session, *, job_id: str) -> Job | None:
    return session.get(Job, job_id)


def deliveries_of(session: Session, *, job_id: str) -> list[Delivery]:
    statement = select(Delivery).where(Delivery.job_id == job_id).order_by(col(Delivery.id))
    return list(session.exec(statement))


def events_of(session: Session, *, delivery_ids: Sequence[int]) -> list[DeliveryEvent]:
    statement = (
        select(DeliveryEvent)
        .where(col(DeliveryEvent.delivery_id).in_(delivery_ids))
        .order_by(col(DeliveryEvent.id))
    )
    return list(session.exec(statement))


def job_status(deliveries: Iterable[Delivery]) -> JobStatus:
    statuses = {d.status for d in deliveries}
    open_statuses = statuses - set(FINAL)
    if not open_statuses:
        return (
            JobStatus.CANCELLED if statuses == {DeliveryStatus.CANCELLED} else JobStatus.COMPLETED
        )
    if open_statuses == {DeliveryStatus.SCHEDULED}:
        return JobStatus.SCHEDULED
    busy = {
        DeliveryStatus.QUEUED,
        DeliveryStatus.DEFERRED,
        DeliveryStatus.CLAIMED,
        DeliveryStatus.AWAITING_AUDIT,
        DeliveryStatus.SENDING,
    }
    if open_statuses & busy:
        return JobStatus.QUEUED
    if DeliveryStatus.SCHEDULED in open_statuses:
        return JobStatus.SCHEDULED
    return JobStatus.SUBMITTED


def mark_enqueued(session: Session, *, job_ids: Sequence[str], now: datetime) -> None:
    if job_ids:
        session.exec(sa.update(Job).where(col(Job.id).in_(job_ids)).values(enqueued_at=now))


def count_error_attempt(session: Session, *, job_id: str) -> int:
    """Add one failed vendor call to the job's error budget; return the new count."""
    session.exec(
        sa.update(Job)
        .where(col(Job.id) == job_id)
        .values(error_attempts=col(Job.error_attempts) + 1)
    )
    job = session.get(Job, job_id, populate_existing=True)
    assert job is not None
    return job.error_attempts


# --- status changes ------------------------------------------------------------------------


def move_deliveries(
    session: Session,
    *,
    where: Any,
    from_statuses: Iterable[DeliveryStatus],
    to: DeliveryStatus,
    now: datetime,
    detail: str | None = None,
    **values: Any,
) -> list[int]:
    """Move every delivery matching `where` and in one of `from_statuses` to `to`.

    One conditional UPDATE per source status, so only rows still in that status change, and one
    event row for each; returns the ids that changed. Two workers racing for the same rows: the
    second changes nothing.
    """
    moved: list[int] = []
    events: list[dict[str, Any]] = []
    # A row already in `to` is updated first: otherwise a row moved into `to` by an earlier
    # pass would be caught again by that pass, and recorded twice.
    sources = list(dict.fromkeys(from_statuses))
    for source in sorted(sources, key=lambda status: status != to):
        statement = (
            sa.update(Delivery)
            .where(where, col(Delivery.status) == source)
            .values(status=to, updated_at=now, **values)
            .returning(col(Delivery.id))
        )
        ids = [row[0] for row in session.exec(statement)]
        moved.extend(ids)
        events.extend(
            {"delivery_id": i, "at": now, "from_status": source, "to_status": to, "detail": detail}
            for i in ids
        )
    if events:
        session.exec(sa.insert(DeliveryEvent), params=events)
    return moved


def queued_vendors(session: Session, *, job_id: str) -> list[str]:
    """The vendors the job's queued deliveries go through (more than one after a failover)."""
    statement = (
        select(Delivery.vendor)
        .where(col(Delivery.job_id) == job_id, col(Delivery.status) == DeliveryStatus.QUEUED)
        .distinct()
    )
    return sorted(session.exec(statement))


def claim_for_sending(
    session: Session, *, job_id: str, vendor: str, now: datetime, limit: int
) -> list[Delivery]:
    """Claim up to `limit` of the job's queued deliveries through `vendor` (→ claimed).

    Returns only the rows this call moved: a concurrent claimer gets the others or none.
    """
    candidates = select(Delivery.id).where(
        col(Delivery.job_id) == job_id,
        col(Delivery.vendor) == vendor,
        col(Delivery.status) == DeliveryStatus.QUEUED,
    )
    ids = move_deliveries(
        session,
        where=col(Delivery.id).in_(candidates.order_by(col(Delivery.id)).limit(limit)),
        from_statuses=[DeliveryStatus.QUEUED],
        to=DeliveryStatus.CLAIMED,
        now=now,
        claimed_at=now,
    )
    if not ids:
        return []
    statement = select(Delivery).where(col(Delivery.id).in_(ids)).order_by(col(Delivery.id))
    return list(session.exec(statement))


def mark_sending(
    session: Session, *, delivery_ids: Sequence[int | None], now: datetime
) -> set[int]:
    """claimed → sending, committed just before the vendor call; returns the ids still claimed
    (a cancel may have taken some in between: those must not be sent)."""
    return set(
        move_deliveries(
            session,
            where=ids_in(delivery_ids),
            from_statuses=[DeliveryStatus.CLAIMED],
            to=DeliveryStatus.SENDING,
            now=now,
            claimed_at=now,
        )
    )


def ids_in(ids: Sequence[int | None]) -> Any:
    return col(Delivery.id).in_(ids)


def release_due(session: Session, *, now: datetime, limit: int = 1000) -> list[str]:
    """Move scheduled and deferred deliveries whose time has come to queued; return their jobs."""
    statement = (
        select(Delivery.id, Delivery.job_id)
        .where(
            col(Delivery.status).in_([DeliveryStatus.SCHEDULED, DeliveryStatus.DEFERRED]),
            col(Delivery.not_before) <= now,
        )
        .limit(limit)
    )
    due = list(session.exec(statement))
    if not due:
        return []
    moved = set(
        move_deliveries(
            session,
            where=ids_in([delivery_id for delivery_id, _ in due]),
            from_statuses=[DeliveryStatus.SCHEDULED, DeliveryStatus.DEFERRED],
            to=DeliveryStatus.QUEUED,
            now=now,
            detail="due",
        )
    )
    job_ids = sorted({job_id for delivery_id, job_id in due if delivery_id in moved})
    mark_enqueued(session, job_ids=job_ids, now=now)
    return job_ids


def stale_queued_jobs(session: Session, *, now: datetime, older_than_s: float) -> list[str]:
    """Jobs with queued deliveries whose task was last enqueued long ago (it may be lost)."""
    cutoff = now.timestamp() - older_than_s
    statement = (
        select(Job.id, Job.enqueued_at)
        .join(Delivery, col(Delivery.job_id) == col(Job.id))
        .where(col(Delivery.status) == DeliveryStatus.QUEUED)
        .distinct()
    )
    return sorted(
        job_id
        for job_id, enqueued_at in session.exec(statement)
        if enqueued_at is None or enqueued_at.timestamp() <= cutoff
    )


def expire_stale_sending(session: Session, *, now: datetime, older_than_s: float) -> list[int]:
    """`sending` for longer than any task may run: the worker died mid-call → unknown."""
    cutoff = datetime.fromtimestamp(now.timestamp() - older_than_s, UTC)
    return move_deliveries(
        session,
        where=col(Delivery.claimed_at) <= cutoff,
        from_statuses=[DeliveryStatus.SENDING],
        to=DeliveryStatus.UNKNOWN,
        now=now,
        detail="sending timed out: the worker stopped during the vendor call",
        last_error="sending timed out: the worker stopped during the vendor call",
    )


def requeue_stale_claims(session: Session, *, now: datetime, older_than_s: float) -> list[str]:
    """`claimed` for longer than any task may run: the worker died before calling the vendor,
    so sending is still safe. Back to queued; returns their jobs, to enqueue again."""
    cutoff = datetime.fromtimestamp(now.timestamp() - older_than_s, UTC)
    stale = list(
        session.exec(
            select(Delivery.id, Delivery.job_id).where(
                col(Delivery.status) == DeliveryStatus.CLAIMED, col(Delivery.claimed_at) <= cutoff
            )
        )
    )
    moved = set(
        move_deliveries(
            session,
            where=ids_in([delivery_id for delivery_id, _ in stale]),
            from_statuses=[DeliveryStatus.CLAIMED],
            to=DeliveryStatus.QUEUED,
            now=now,
            detail="claimed by a worker that stopped before calling the vendor",
        )
    )
    job_ids = sorted({job_id for delivery_id, job_id in stale if delivery_id in moved})
    mark_enqueued(session, job_ids=job_ids, now=now)
    return job_ids


def cancel_job(session: Session, *, job_id: str, now: datetime) -> list[int]:
    return move_deliveries(
        session,
        where=col(Delivery.job_id) == job_id,
        from_statuses=UNSENT,
        to=DeliveryStatus.CANCELLED,
        now=now,
        detail="cancelled by request",
    )


def day_counts(session: Session, *, vendor: str, channel: Channel, since: datetime) -> DayCounts:
    """Per phone, how many deliveries the vendor took since `since`, and the latest time.

    The seed of the limits after Redis forgot them. Deliveries still `sending` do not count:
    the batch being reserved is among them; a call in flight at the moment Redis restarted is
    the one gap, and the vendor's own minute rule (a `RateLimited` reply) covers it.
    """
    statement = (
        select(Delivery.phone, Delivery.submitted_at)
        .join(Job, col(Job.id) == col(Delivery.job_id))
        .where(
            col(Delivery.vendor) == vendor,
            col(Job.channel) == channel,
            col(Delivery.submitted_at) >= since,
        )
    )
    per_number: dict[str, int] = {}
    last_sent: dict[str, datetime] = {}
    for phone, submitted_at in session.exec(statement):
        per_number[phone] = per_number.get(phone, 0) + 1
        if submitted_at is not None and (phone not in last_sent or submitted_at > last_sent[phone]):
            last_sent[phone] = submitted_at
    return DayCounts(per_number=per_number, last_sent=last_sent)


# --- MMS contents and their audit ---------------------------------------------------------


def mms_content(session: Session, *, vendor: str, digest: str) -> MmsContent | None:
    statement = select(MmsContent).where(
        col(MmsContent.vendor) == vendor, col(MmsContent.digest) == digest
    )
    return session.exec(statement).first()


def add_mms_content(
    session: Session, *, vendor: str, digest: str, ref: str, now: datetime
) -> MmsContent:
    """Record a created content as pending; when another worker recorded the same content
    first, that one is kept (the duplicate mmsId is simply never used)."""
    content = MmsContent(
        vendor=vendor, digest=digest, ref=ref, status=AuditStatus.PENDING, created_at=now
    )
    try:
        with session.begin_nested():
            session.add(content)
    except IntegrityError:
        existing = mms_content(session, vendor=vendor, digest=digest)
        assert existing is not None
        return existing
    return content


def decide_audit(
    session: Session, *, vendor: str, ref: str, approved: bool, reason: str | None, now: datetime
) -> bool:
    """Record the vendor's audit result for a content; False when no content has that id."""
    statement = (
        sa.update(MmsContent)
        .where(col(MmsContent.vendor) == vendor, col(MmsContent.ref) == ref)
        .values(
            status=AuditStatus.APPROVED if approved else AuditStatus.REJECTED,
            reason=reason,
            decided_at=now,
        )
    )
    return bool(session.exec(statement).rowcount)


def settle_audits(session: Session, *, now: datetime, timeout_s: float) -> list[str]:
    """Move deliveries awaiting an audit that has been decided, or has taken too long.

    Approved → queued (returns their jobs, to enqueue); rejected → failed with the vendor's
    reason; pending past `timeout_s` → failed. Run by the audit push and by the sweeper, so a
    delivery that went to `awaiting_audit` just after its push was applied is not stranded.
    """
    waiting = list(
        session.exec(
            select(Delivery.id, Delivery.job_id, MmsContent.status, MmsContent.reason)
            .join(Job, col(Job.id) == col(Delivery.job_id))
            .join(
                MmsContent,
                sa.and_(
                    col(MmsContent.ref) == col(Job.content_ref),
                    col(MmsContent.vendor) == col(Delivery.vendor),
                ),
            )
            .where(col(Delivery.status) == DeliveryStatus.AWAITING_AUDIT)
        )
    )
    cutoff = datetime.fromtimestamp(now.timestamp() - timeout_s, UTC)
    released: set[str] = set()
    for delivery_id, job_id, status, reason in waiting:
        where = ids_in([delivery_id])
        if status is AuditStatus.APPROVED:
            if move_deliveries(
                session,
                where=where,
                from_statuses=[DeliveryStatus.AWAITING_AUDIT],
                to=DeliveryStatus.QUEUED,
                now=now,
                detail="MMS approved by the vendor's audit",
            ):
                released.add(job_id)
            continue
        if status is AuditStatus.REJECTED:
            why = f"MMS rejected by the vendor's audit: {reason or 'no reason given'}"
        else:
            why = "MMS audit result not received in time (HERALD_MMS_AUDIT_TIMEOUT_S)"
            where = sa.and_(where, col(Delivery.updated_at) <= cutoff)
        move_deliveries(
            session,
            where=where,
            from_statuses=[DeliveryStatus.AWAITING_AUDIT],
            to=DeliveryStatus.FAILED,
            now=now,
            detail=why,
            last_error=why,
        )
    job_ids = sorted(released)
    mark_enqueued(session, job_ids=job_ids, now=now)
    return job_ids


def set_content_ref(session: Session, *, job_id: str, ref: str) -> None:
    session.exec(sa.update(Job).where(col(Job.id) == job_id).values(content_ref=ref))


# --- balances and inbound messages ----------------------------------------------------------


def record_balance(
    session: Session, *, product: str, balance: str | None, error: str | None, now: datetime
) -> VendorBalance:
    row = session.get(VendorBalance, product) or VendorBalance(product=product)
    row.balance, row.error, row.checked_at = balance, error, now
    session.add(row)
    return row


def balances(session: Session) -> dict[str, VendorBalance]:
    return {row.product: row for row in session.exec(select(VendorBalance))}


def inbound_messages(
    session: Session, *, phone: str | None = None, limit: int = 100, offset: int = 0
) -> list[InboundMessage]:
    """Replies and MO messages, newest first."""
    statement = select(InboundMessage).order_by(col(InboundMessage.id).desc())
    if phone is not None:
        statement = statement.where(col(InboundMessage.phone) == phone)
    return list(session.exec(statement.offset(offset).limit(limit)))


# --- suppressions ------------------------------------------------------------------------


def suppress(session: Session, *, phone: str, reason: str, now: datetime) -> Suppression:
    """Add a number to the suppression list (kept as first recorded when already there)."""
    existing = session.get(Suppression, phone)
    if existing is not None:
        return existing
    suppression = Suppression(phone=phone, reason=reason, created_at=now)
    session.add(suppression)
    return suppression


def unsuppress(session: Session, *, phone: str) -> bool:
    existing = session.get(Suppression, phone)
    if existing is None:
        return False
    session.delete(existing)
    return True


def suppressions(session: Session, *, limit: int = 1000, offset: int = 0) -> list[Suppression]:
    statement = (
        select(Suppression).order_by(col(Suppression.created_at)).offset(offset).limit(limit)
    )
    return list(session.exec(statement))


def suppressed_among(session: Session, *, phones: Sequence[str]) -> dict[str, Suppression]:
    statement = select(Suppression).where(col(Suppression.phone).in_(phones))
    return {s.phone: s for s in session.exec(statement)}


# --- vendor reports and pushes ---------------------------------------------------------------


def push_digest(vendor: str, kind: str, payload: dict[str, str]) -> str:
    canonical = json.dumps([vendor, kind, payload], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def record_push(
    session: Session, *, vendor: str, kind: str, payload: dict[str, str], now: datetime
) -> tuple[VendorPush, bool]:
    """Store a push as received; `(push, False)` when the same push was stored before."""
    digest = push_digest(vendor, kind, payload)
    existing = session.exec(select(VendorPush).where(col(VendorPush.digest) == digest)).first()
    if existing is not None:
        return existing, False
    push = VendorPush(vendor=vendor, kind=kind, payload=payload, digest=digest, received_at=now)
    try:
        with session.begin_nested():
            session.add(push)
    except IntegrityError:  # the same push, stored by a concurrent request a moment ago
        stored = session.exec(select(VendorPush).where(col(VendorPush.digest) == digest)).one()
        return stored, False
    return push, True


def mark_push_applied(session: Session, *, push: VendorPush, outcome: str, now: datetime) -> None:
    push.applied_at = now
    push.outcome = outcome
    session.add(push)


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


def add_inbound(
    session: Session,
    *,
    vendor: str,
    phone: str,
    content: str,
    vendor_ref: str | None,
    received_at: datetime | None,
    now: datetime,
) -> InboundMessage:
    message = InboundMessage(
        vendor=vendor,
        phone=phone,
        content=content,
        vendor_ref=vendor_ref,
        received_at=received_at,
        stored_at=now,
    )
    session.add(message)
    return message
