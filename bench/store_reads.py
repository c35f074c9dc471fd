"""What the bench reads from the store: how far a measurement's deliveries have come, and when.

The times are the store's own (`submitted_at`, `reported_at`, a push's `received_at`), written
by the worker and the API; the bench compares them with its own clock, which is the same
machine's."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from worker.store import Delivery, Job, VendorPush

REPORTED = ("delivered", "undelivered")


def delivery_watermark(engine: Engine) -> int:
    """The newest delivery's id: a measurement's own deliveries are those after it."""
    with Session(engine) as session:
        return session.exec(select(sa.func.max(Delivery.id))).one() or 0


def push_watermark(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(sa.func.max(VendorPush.id))).one() or 0


def reached(engine: Engine, after_id: int, column: str) -> tuple[int, datetime | None]:
    """How many deliveries after `after_id` have `column` (`submitted_at`, `reported_at`) set,
    and the latest such time."""
    stamp = getattr(Delivery, column)
    with Session(engine) as session:
        count, latest = session.exec(
            select(sa.func.count(), sa.func.max(stamp)).where(
                col(Delivery.id) > after_id, col(stamp).is_not(None)
            )
        ).one()
    return int(count), latest


def reports_applied(engine: Engine, after_id: int) -> tuple[int, datetime | None]:
    """Deliveries after `after_id` settled by a report, and the latest time one was."""
    with Session(engine) as session:
        count, latest = session.exec(
            select(sa.func.count(), sa.func.max(Delivery.updated_at)).where(
                col(Delivery.id) > after_id, col(Delivery.status).in_(REPORTED)
            )
        ).one()
    return int(count), latest


def statuses(engine: Engine, after_id: int) -> Counter[str]:
    with Session(engine) as session:
        rows = session.exec(
            select(Delivery.status, sa.func.count())
            .where(col(Delivery.id) > after_id)
            .group_by(Delivery.status)
        ).all()
    return Counter({str(status): n for status, n in rows})


def created_to_submitted_s(engine: Engine, after_id: int) -> list[float]:
    """For each submitted delivery after `after_id`: seconds from its job's creation."""
    with Session(engine) as session:
        rows = session.exec(
            select(Job.created_at, Delivery.submitted_at)
            .join(Job, col(Job.id) == col(Delivery.job_id))
            .where(col(Delivery.id) > after_id, col(Delivery.submitted_at).is_not(None))
        ).all()
    return [(submitted - created).total_seconds() for created, submitted in rows if submitted]


def first_push_received(engine: Engine, after_id: int, kind: str) -> datetime | None:
    with Session(engine) as session:
        return session.exec(
            select(sa.func.min(VendorPush.received_at)).where(
                col(VendorPush.id) > after_id, col(VendorPush.kind) == kind
            )
        ).one()


def status_summary(counts: Counter[str]) -> str:
    return ", ".join(f"{n:,} {status}" for status, n in counts.most_common())
