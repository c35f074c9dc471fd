"""What vendors push: pushes and pulled report pages stored as received (deduplicated by
content, since vendors retry pushes they think were lost), and the inbound replies they carry.

A NUL character never reaches the store: PostgreSQL's text refuses it, so one NUL would make the
push, or the reply it carries, impossible to write. It is kept visible as the six characters
`\u0000` (`NUL_MARKER`), so the stored push still shows what came.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from worker.store.models import InboundMessage, VendorPush

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


def record_push(
    session: Session, *, vendor: str, kind: str, payload: dict[str, str], now: datetime
) -> tuple[VendorPush, bool]:
    """Store a push as received (NUL characters escaped); `(push, False)` when the same push was
    stored before."""
    payload = without_nul(payload)
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
