"""What the routes depend on: a store session per request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends
from sqlmodel import Session

from worker.store import session_scope

STORE_RETRY_AFTER_S = 5
"""The Retry-After of a 503 answered because the store is unreachable."""


def get_session() -> Iterator[Session]:
    """A session that commits when the route returns and rolls back when it raises."""
    with session_scope() as session:
        yield session


# scope="function": the commit happens before the answer is sent, so a client that reads back
# what it just wrote finds it, and a failed commit answers an error rather than a false success
# (503 when the store is unreachable: worker/api/app.py).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
