"""What the routes depend on: a store session per request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends
from sqlmodel import Session

from worker.store import session_scope


def get_session() -> Iterator[Session]:
    """A session that commits when the route returns and rolls back when it raises."""
    with session_scope() as session:
        yield session


# scope="function": the commit happens before the answer is sent, so a client that reads back
# what it just wrote finds it, and a failed commit answers 500 rather than a false success.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
