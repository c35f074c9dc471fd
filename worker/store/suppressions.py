"""The suppression list: numbers that asked for no more marketing (an opt-out reply, or an
operator); the send task fails marketing deliveries to them instead of sending."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, col, select

from worker.store.models import Suppression


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
