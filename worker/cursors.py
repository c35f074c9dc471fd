"""Page cursors: opaque strings that say where the last page ended.

A cursor is base64url of a small JSON array whose first element names the list it belongs to,
so a recipients cursor given to the jobs list is refused rather than misread. Callers never
build or read one themselves: what is inside may change between releases.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime

from worker.errors import InvalidCursor
from worker.store.search import JobPosition

MAX_CURSOR_CHARS = 200
"""Longer than any cursor herald writes; anything longer is refused before it is decoded."""
JOBS = "jobs"
RECIPIENTS = "recipients"


def job_cursor(position: JobPosition) -> str:
    return _encode([JOBS, position.created_at.astimezone(UTC).isoformat(), position.id])


def read_job_cursor(cursor: str) -> JobPosition:
    """The position a `job_cursor` wrote; raises `InvalidCursor` for anything else."""
    match _decode(cursor):
        case [str() as kind, str() as created_at, str() as job_id] if kind == JOBS:
            try:
                moment = datetime.fromisoformat(created_at)
            except ValueError:
                raise InvalidCursor("not a cursor of this list") from None
            if moment.tzinfo is None or not job_id or len(job_id) > 32 or "\x00" in job_id:
                raise InvalidCursor("not a cursor of this list")
            return JobPosition(created_at=moment, id=job_id)
    raise InvalidCursor("not a cursor of this list")


def recipient_cursor(delivery_id: int) -> str:
    return _encode([RECIPIENTS, delivery_id])


def read_recipient_cursor(cursor: str) -> int:
    """The recipient id a `recipient_cursor` wrote; raises `InvalidCursor` for anything else."""
    match _decode(cursor):
        case [str() as kind, int() as delivery_id] if kind == RECIPIENTS and (
            0 <= delivery_id < 2**63
        ):
            return delivery_id
    raise InvalidCursor("not a cursor of this list")


def _encode(value: list[object]) -> str:
    text = json.dumps(value, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(cursor: str) -> object:
    if len(cursor) > MAX_CURSOR_CHARS or not cursor.isascii():
        raise InvalidCursor("not a cursor herald wrote")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return json.loads(raw)
    except (binascii.Error, ValueError):
        raise InvalidCursor("not a cursor herald wrote") from None
