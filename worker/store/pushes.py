"""What vendors push: pushes and pulled report pages stored as received (deduplicated by
content, since vendors retry pushes they think were lost), and the inbound replies they carry."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from worker.store.models import InboundMessage, VendorPush


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
