"""Jobs: storing a request with its deliveries, reading a job back, and its overall status.

A job of 100,000 recipients is accepted in one request, so its deliveries are written in bulk,
never as ORM objects: PostgreSQL takes a big job by COPY and a small one by one multi-row
INSERT, SQLite by executemany. A job's status is computed from a count of its deliveries by
status (one GROUP BY), never by loading them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, col, select

from worker.enums import (
    DEFAULT_CAP_POLICY,
    FINAL,
    CapPolicy,
    Channel,
    DeliveryStatus,
    JobStatus,
    Purpose,
)
from worker.store.models import Delivery, DeliveryEvent, Job


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
    api_key_name: str | None = None
    """Who asked: the API key's name, "cli" for the command line, None for Python callers."""
    callback_url: str | None = None
    """Where its recipients' status changes are POSTed; None: nowhere."""


def create_job(session: Session, *, new: NewJob, now: datetime) -> tuple[Job, bool]:
    """Store a job and its deliveries; return `(job, created)`.

    With an idempotency key already used, returns the first job and `created=False`.
    """
    if new.idempotency_key is not None:
        existing = job_by_idempotency_key(session, key=new.idempotency_key)
        if existing is not None:
            return existing, False
    status = initial_status(new, now=now)
    scheduled = status is DeliveryStatus.SCHEDULED
    job = Job(
        channel=new.channel,
        vendor=new.vendor,
        purpose=new.purpose,
        content=new.content,
        payload=new.payload,
        on_daily_cap=new.on_daily_cap or DEFAULT_CAP_POLICY[new.channel.value],
        allow_failover=new.allow_failover,
        idempotency_key=new.idempotency_key,
        api_key_name=new.api_key_name,
        callback_url=new.callback_url,
        send_at=new.send_at,
        expires_at=new.expires_at,
        created_at=now,
        enqueued_at=None if scheduled else now,
    )
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
    insert_deliveries(
        session,
        shared={
            "job_id": job.id,
            "vendor": new.vendor,
            "channel": new.channel,
            "send_alone": False,
            "status": status,
            "not_before": new.send_at if scheduled else None,
            "updated_at": now,
        },
        phones=new.phones,
        texts=new.texts,
    )
    return job, True


def initial_status(new: NewJob, *, now: datetime) -> DeliveryStatus:
    """Every delivery of a new job starts here: `scheduled` for a later `send_at`, else `queued`."""
    if new.send_at is not None and new.send_at > now:
        return DeliveryStatus.SCHEDULED
    return DeliveryStatus.QUEUED


COPY_FROM_ROWS = 500
"""From this many deliveries PostgreSQL takes them by COPY; below it one multi-row INSERT is
fewer round trips (COPY costs its own start and end)."""
CHUNK_ROWS = 10_000
"""Rows handed to the driver at a time, so a big job is never held whole a second time."""
COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def insert_deliveries(
    session: Session,
    *,
    shared: Mapping[str, Any],
    phones: Sequence[str],
    texts: Mapping[str, str] | None,
) -> None:
    """Write one delivery per phone in the session's transaction, in the order of `phones` (so
    their ids follow it). `shared` holds the columns every one of them has the same value in;
    `texts` each number's own text, if any."""
    connection = session.connection()
    if connection.dialect.name == "postgresql" and len(phones) >= COPY_FROM_ROWS:
        copy_deliveries(connection, shared=shared, phones=phones, texts=texts)
        return
    if connection.dialect.name == "sqlite":
        executemany_deliveries(connection, shared=shared, phones=phones, texts=texts)
        return
    statement = sa.insert(Delivery)
    for start in range(0, len(phones), CHUNK_ROWS):
        rows = [
            {**shared, "phone": phone, "text": texts.get(phone) if texts else None}
            for phone in phones[start : start + CHUNK_ROWS]
        ]
        connection.execute(statement, rows)


def executemany_deliveries(
    connection: sa.Connection,
    *,
    shared: Mapping[str, Any],
    phones: Sequence[str],
    texts: Mapping[str, str] | None,
) -> None:
    """SQLite's executemany straight on the driver: the shared columns are converted to what
    the driver takes once, not once a row as a Core INSERT would (half its time for a big job)."""
    table = SQLModel.metadata.tables["delivery"]
    values = tuple(
        bound_value(connection.dialect, table.c[name], value) for name, value in shared.items()
    )
    columns = [*shared, "phone", "text"]
    statement = (
        f"INSERT INTO delivery ({', '.join(columns)}) VALUES ({', '.join(['?'] * len(columns))})"
    )
    for start in range(0, len(phones), CHUNK_ROWS):
        rows = [
            (*values, phone, texts.get(phone) if texts else None)
            for phone in phones[start : start + CHUNK_ROWS]
        ]
        connection.exec_driver_sql(statement, rows)


def bound_value(dialect: sa.Dialect, column: sa.Column[Any], value: object) -> object:
    """`value` as the driver receives it for `column`, as SQLAlchemy would bind it."""
    process = column.type.bind_processor(dialect)
    return value if process is None else process(value)


def copy_deliveries(
    connection: sa.Connection,
    *,
    shared: Mapping[str, Any],
    phones: Sequence[str],
    texts: Mapping[str, str] | None,
) -> None:
    """PostgreSQL's COPY FROM STDIN in COPY's text format, through psycopg's driver connection
    and in the connection's transaction. The shared columns are written out once and each row
    adds its phone and text: far cheaper than a driver adapting 100,000 rows value by value."""
    driver = connection.connection.driver_connection
    assert driver is not None
    columns = ", ".join([*shared, "phone", "text"])
    prefix = "".join(copy_text(value) + "\t" for value in shared.values())
    with driver.cursor() as cursor, cursor.copy(f"COPY delivery ({columns}) FROM STDIN") as copy:
        for start in range(0, len(phones), CHUNK_ROWS):
            copy.write(
                "".join(
                    f"{prefix}{copy_text(phone)}\t"
                    f"{copy_text(texts.get(phone) if texts else None)}\n"
                    for phone in phones[start : start + CHUNK_ROWS]
                )
            )


def copy_text(value: object) -> str:
    """One value as COPY's text format writes it: `\\N` for NULL, backslash escapes in text."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use an aware one")
        return value.isoformat()
    if isinstance(value, str):  # a StrEnum is written as its value
        return str.translate(value, COPY_ESCAPES)
    raise TypeError(f"no COPY text form for {type(value).__name__}")


def job_by_idempotency_key(session: Session, *, key: str) -> Job | None:
    return session.exec(select(Job).where(Job.idempotency_key == key)).first()


def get_job(session: Session, *, job_id: str) -> Job | None:
    if "\x00" in job_id:  # no id has one, and PostgreSQL refuses to even look it up
        return None
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
    return job_status_of({d.status for d in deliveries})


def job_status_of(statuses: Collection[DeliveryStatus]) -> JobStatus:
    """A job's status from the set of its recipients' statuses (docs/design.md, "Job status")."""
    statuses = set(statuses)
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
