"""What vendors push: pushes and pulled report pages stored as received (deduplicated by
content, since vendors retry pushes they think were lost), and the inbound replies they carry.

A NUL character never reaches the store: PostgreSQL's text refuses it, so one NUL would make the
push, or the reply it carries, impossible to write. It is kept visible as the six characters
`\u0000` (`NUL_MARKER`), so the stored push still shows what came.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from worker.errors import PushesRaced
from worker.store.models import InboundMessage, VendorPush
from worker.store.reports import ReportOutcome

NUL_MARKER = "\\u0000"
"""What a NUL character of a push is stored as."""


def without_nul(payload: dict[str, str]) -> dict[str, str]:
    """The payload with every NUL of its names and values replaced by `NUL_MARKER`."""
    return {
        key.replace("\0", NUL_MARKER): value.replace("\0", NUL_MARKER)
        for key, value in payload.items()
    }


def push_digest(vendor: str, kind: str, payload: dict[str, str]) -> str:
    canonical = json.dumps([vendor, kind, payload], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def insert_push(
    session: Session, *, vendor: str, kind: str, payload: dict[str, str], now: datetime
) -> int | None:
    """Store a push as received (NUL characters escaped) in one statement; its new id, or None
    when the same push was stored before (`INSERT ... ON CONFLICT (digest) DO NOTHING`)."""
    payload = without_nul(payload)
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(VendorPush)
        .values(
            vendor=vendor,
            kind=kind,
            payload=payload,
            digest=push_digest(vendor, kind, payload),
            received_at=now,
        )
        .on_conflict_do_nothing(index_elements=["digest"])
        .returning(col(VendorPush.id))
    )
    return session.execute(statement).scalar_one_or_none()


def record_push(
    session: Session, *, vendor: str, kind: str, payload: dict[str, str], now: datetime
) -> tuple[VendorPush, bool]:
    """Store a push as received (NUL characters escaped); `(push, False)` when the same push was
    stored before."""
    push_id = insert_push(session, vendor=vendor, kind=kind, payload=payload, now=now)
    if push_id is None:
        digest = push_digest(vendor, kind, without_nul(payload))
        stored = session.exec(select(VendorPush).where(col(VendorPush.digest) == digest)).one()
        return stored, False
    push = session.get(VendorPush, push_id)
    assert push is not None
    return push, True


def mark_push_applied(session: Session, *, push: VendorPush, outcome: str, now: datetime) -> None:
    push.applied_at = now
    push.outcome = outcome
    session.add(push)


def pushes_never_tried(session: Session, *, limit: int) -> list[int]:
    """Unapplied pushes no worker has tried yet (no outcome), oldest first."""
    statement = (
        select(VendorPush.id)
        .where(col(VendorPush.applied_at).is_(None), col(VendorPush.outcome).is_(None))
        .order_by(col(VendorPush.id))
        .limit(limit)
    )
    return [i for i in session.exec(statement) if i is not None]


def pushes_to_retry(session: Session, *, after_id: int, limit: int) -> list[int]:
    """Unapplied pushes tried before (their report named no stored delivery yet), in id order
    from just after `after_id`, wrapping around to the first: successive calls that pass the last
    id returned go round all of them."""

    def ids(where: Any, count: int) -> list[int]:
        statement = (
            select(VendorPush.id)
            .where(
                col(VendorPush.applied_at).is_(None), col(VendorPush.outcome).is_not(None), where
            )
            .order_by(col(VendorPush.id))
            .limit(count)
        )
        return [i for i in session.exec(statement) if i is not None]

    found = ids(col(VendorPush.id) > after_id, limit)
    if len(found) < limit:
        found += ids(col(VendorPush.id) <= after_id, limit - len(found))
    return found


def take_pushes(session: Session, *, ids: Sequence[int] | None, limit: int) -> list[VendorPush]:
    """Unapplied pushes for this transaction alone: those of `ids` still unapplied, or (without
    `ids`) the oldest `limit` never tried. On PostgreSQL they are locked and pushes another
    transaction holds are skipped (`FOR UPDATE SKIP LOCKED`), so two appliers never take the
    same push; SQLite has one writer, and `mark_pushes` checks that none was applied meanwhile."""
    statement = select(VendorPush).where(col(VendorPush.applied_at).is_(None))
    if ids is None:
        statement = statement.where(col(VendorPush.outcome).is_(None))
    else:
        statement = statement.where(col(VendorPush.id).in_(ids))
    statement = statement.order_by(col(VendorPush.id)).limit(limit)
    return list(session.exec(statement.with_for_update(skip_locked=True)))


def mark_pushes(session: Session, *, outcomes: Mapping[int, str], now: datetime) -> None:
    """Record what applying each push came to, one UPDATE per distinct outcome (a batch has
    few): applied, except those whose report named no stored delivery yet (`unmatched`), which
    keep waiting for the sweep. Raises `PushesRaced` when another applier marked one of them
    first (the caller's transaction must then be rolled back)."""
    by_outcome: dict[str, list[int]] = {}
    for push_id, outcome in outcomes.items():
        by_outcome.setdefault(outcome, []).append(push_id)
    marked = 0
    for outcome, ids in by_outcome.items():
        values: dict[str, Any] = {"outcome": outcome}
        if outcome != ReportOutcome.UNMATCHED:
            values["applied_at"] = now
        statement = (
            sa.update(VendorPush)
            .where(col(VendorPush.id).in_(ids), col(VendorPush.applied_at).is_(None))
            .values(**values)
        )
        marked += cast(sa.CursorResult[Any], session.execute(statement)).rowcount
    if marked != len(outcomes):
        raise PushesRaced(f"{len(outcomes) - marked} of {len(outcomes)} pushes applied meanwhile")


def quarantine_push(session: Session, *, push_id: int, error: str, now: datetime) -> None:
    """Set a push aside that cannot be applied: marked applied with `quarantined: <error>` as
    its outcome, so no sweep tries it again; it stays in the store for an operator."""
    push = session.get(VendorPush, push_id)
    if push is not None and push.applied_at is None:
        mark_push_applied(session, push=push, outcome=f"quarantined: {error}", now=now)


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


def inbound_messages(
    session: Session, *, phone: str | None = None, limit: int = 100, offset: int = 0
) -> list[InboundMessage]:
    """Replies and MO messages, newest first."""
    statement = select(InboundMessage).order_by(col(InboundMessage.id).desc())
    if phone is not None:
        statement = statement.where(col(InboundMessage.phone) == phone)
    return list(session.exec(statement.offset(offset).limit(limit)))
