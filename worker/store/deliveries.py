"""Deliveries and their state machine: the only code that changes a delivery's status.

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
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from worker.enums import UNSENT, Channel, DeliveryStatus
from worker.limits import DayCounts
from worker.store.models import Delivery, DeliveryEvent, Job


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

    A conditional UPDATE, so only rows still in a source status change, and one event row for
    each, written by one INSERT; returns the ids that changed. Two workers racing for the same
    rows: the second changes nothing.
    """
    sources = list(dict.fromkeys(from_statuses))
    if len(sources) > 1 and session.get_bind().dialect.name == "postgresql":
        moved = _move_from_any(session, where, sources, values | {"status": to, "updated_at": now})
    else:
        moved = _move_from_each(session, where, sources, values | {"status": to, "updated_at": now})
    if moved:
        session.exec(
            sa.insert(DeliveryEvent),
            params=[
                {"delivery_id": i, "at": now, "from_status": f, "to_status": to, "detail": detail}
                for i, f in moved
            ],
        )
    return [i for i, _ in moved]


def _move_from_each(
    session: Session, where: Any, sources: list[DeliveryStatus], values: dict[str, Any]
) -> list[tuple[int, DeliveryStatus]]:
    """One UPDATE per source status; each names the status its rows left."""
    moved: list[tuple[int, DeliveryStatus]] = []
    # A row already in the target status is updated first: otherwise a row moved into it by an
    # earlier pass would be caught again by that pass, and recorded twice.
    for source in sorted(sources, key=lambda status: status != values["status"]):
        statement = (
            sa.update(Delivery)
            .where(where, col(Delivery.status) == source)
            .values(**values)
            .returning(col(Delivery.id))
        )
        moved.extend((row[0], source) for row in session.exec(statement))
    return moved


def _move_from_any(
    session: Session, where: Any, sources: list[DeliveryStatus], values: dict[str, Any]
) -> list[tuple[int, DeliveryStatus]]:
    """PostgreSQL: one UPDATE whatever the number of source statuses. The rows are locked as
    they are read (`FOR UPDATE`), so each event names the status its row really left."""
    prior = (
        select(col(Delivery.id).label("id"), col(Delivery.status).label("from_status"))
        .where(where, col(Delivery.status).in_(sources))
        .with_for_update()
        .subquery("prior")
    )
    statement = (
        sa.update(Delivery)
        .where(col(Delivery.id) == prior.c.id, col(Delivery.status).in_(sources))
        .values(**values)
        .returning(col(Delivery.id), prior.c.from_status)
    )
    return [(row[0], DeliveryStatus(row[1])) for row in session.exec(statement)]


def ids_in(ids: Sequence[int | None]) -> Any:
    return col(Delivery.id).in_(ids)


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

    Returns only the rows this call moved. On PostgreSQL the candidates are locked with
    `FOR UPDATE SKIP LOCKED`, so runs of one job on several workers claim different rows at once
    instead of queueing behind each other's locks; elsewhere (SQLite has one writer) the
    conditional UPDATE alone makes a concurrent claimer get the other rows or none.

    The candidates are selected by a statement of their own: inside the UPDATE's `IN (...)`,
    PostgreSQL may run a `LIMIT ... SKIP LOCKED` subquery once per row and claim more than
    `limit` rows.
    """
    candidates = (
        select(Delivery.id)
        .where(
            col(Delivery.job_id) == job_id,
            col(Delivery.vendor) == vendor,
            col(Delivery.status) == DeliveryStatus.QUEUED,
        )
        .order_by(col(Delivery.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    locked = list(session.exec(candidates))
    if not locked:
        return []
    ids = move_deliveries(
        session,
        where=ids_in(locked),
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
    session: Session,
    *,
    delivery_ids: Sequence[int | None],
    now: datetime,
    claimed_at: datetime | None = None,
) -> set[int]:
    """claimed → sending, committed just before the vendor call; returns the ids still claimed
    (a cancel may have taken some in between: those must not be sent).

    `claimed_at` is the claim's token: the time `claim_for_sending` wrote. With it, only rows
    still held by that very claim move. A claim outlives its lease (HERALD_CLAIM_LEASE_S) when
    its worker stalls; the sweeper then queues the rows again and another worker may claim them,
    so the stale worker's `mark_sending` must move none of them.
    """
    where = ids_in(delivery_ids)
    if claimed_at is not None:
        where = where & (col(Delivery.claimed_at) == claimed_at)
    return set(
        move_deliveries(
            session,
            where=where,
            from_statuses=[DeliveryStatus.CLAIMED],
            to=DeliveryStatus.SENDING,
            now=now,
            claimed_at=now,
        )
    )


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
