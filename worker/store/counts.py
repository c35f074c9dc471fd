"""How many recipients of a job are in each status: what a progress bar shows.

One GROUP BY on the delivery table, so following a 100,000-recipient job never loads its rows.
"""

from __future__ import annotations

from sqlmodel import Session, col, func, select

from worker.enums import DeliveryStatus
from worker.store.models import Delivery


def status_counts(session: Session, *, job_id: str) -> dict[DeliveryStatus, int]:
    """Each status the job's recipients are in, with how many are in it."""
    statement = (
        select(Delivery.status, func.count())
        .where(Delivery.job_id == job_id)
        .group_by(col(Delivery.status))
    )
    return {DeliveryStatus(status): count for status, count in session.exec(statement)}
