"""API keys made by `herald keys create`: a key is shown once, and only its SHA-256 is stored.

A key is `hk_` and 32 random bytes (URL-safe base64), so a fast hash is enough: nobody can guess
one from its hash. The prefix makes a leaked key easy to recognise (and to mask in logs).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from worker.errors import ApiKeyNameTaken
from worker.store.models import ApiKey

API_KEY_PREFIX = "hk_"
API_KEY_BYTES = 32


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(API_KEY_BYTES)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_api_key(session: Session, *, name: str, now: datetime) -> str:
    """Store a new key named `name`; return the key itself, which is never stored.

    Raises `ApiKeyNameTaken` when a key (even a revoked one) already has that name.
    """
    key = new_api_key()
    session.add(ApiKey(name=name, key_hash=hash_api_key(key), created_at=now))
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise ApiKeyNameTaken(name) from None
    return key


def find_api_key(session: Session, *, key: str) -> ApiKey | None:
    """The stored key (revoked or not) that `key` is, if any."""
    digest = hash_api_key(key)
    row = session.exec(select(ApiKey).where(col(ApiKey.key_hash) == digest)).first()
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        return None
    return row


def api_keys(session: Session) -> list[ApiKey]:
    return list(session.exec(select(ApiKey).order_by(col(ApiKey.id))))


def revoke_api_key(session: Session, *, name: str, now: datetime) -> bool:
    """Revoke the key named `name`; False when there is no such key not yet revoked."""
    result = session.exec(
        sa.update(ApiKey)
        .where(col(ApiKey.name) == name, col(ApiKey.revoked_at).is_(None))
        .values(revoked_at=now)
    )
    return bool(result.rowcount)


def any_active_api_key(session: Session) -> bool:
    statement = select(ApiKey.id).where(col(ApiKey.revoked_at).is_(None)).limit(1)
    return session.exec(statement).first() is not None
