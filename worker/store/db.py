"""Engines and sessions: one engine per process, SQLite tuned for many writers.

SQLite runs in WAL mode with a busy timeout, so the API, the worker's processes and beat can
write to one file; PostgreSQL connections are checked before use (`pool_pre_ping`), so a pooled
connection that a database restart broke is replaced rather than failing a request, and a
connection attempt gives up after `STORE_CONNECT_TIMEOUT_S`.

The pool keeps `HERALD_STORE_POOL_SIZE` connections open for reuse. The API runs its routes in
uvicorn's threadpool (`API_THREADS` at once), so up to that many sessions may be open together:
those beyond the pool's size are opened for one use and closed, rather than waited for. A pool
smaller than the requests in flight opens a new connection (a new PostgreSQL backend) per
request; a Celery worker process runs one task at a time and opens only what it uses.

An outage of the store (connection refused or lost, no pooled connection free in time) leaves
`session_scope` as one error, `StoreUnavailable`, whatever the driver said: the API answers it
with 503 and the tasks retry it (docs/design.md, "When the store is unreachable").
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from worker.errors import StoreUnavailable
from worker.settings import get_settings

STORE_CONNECT_TIMEOUT_S = 10
"""A PostgreSQL connection attempt that takes longer is an outage (the driver has no limit)."""
API_THREADS = 40
"""Sync routes uvicorn runs at once: the size of anyio's default threadpool."""

OUTAGE_ERRORS = (
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
    sa.exc.DisconnectionError,
    sa.exc.TimeoutError,  # no pooled connection came free in time
)
"""What SQLAlchemy raises when the store cannot be reached, rather than for a wrong statement."""

_engine: Engine | None = None
_engine_pid: int | None = None


def get_engine() -> Engine:
    """This process's engine, made on first use (never inherited across a fork)."""
    global _engine, _engine_pid
    if _engine is None or _engine_pid != os.getpid():
        _engine = make_engine(get_settings().store_url)
        _engine_pid = os.getpid()
    return _engine


def reset_engine() -> None:
    """Close this process's engine; the next `get_engine` reads the settings again."""
    global _engine, _engine_pid
    if _engine is not None:
        _engine.dispose()
    _engine = _engine_pid = None


def make_engine(url: str) -> Engine:
    """An engine for `url`; for a SQLite file, its folder is created first."""
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        in_memory = database in (None, "", ":memory:")
        if database and not in_memory:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False},
            **({} if in_memory else pool_sizes()),
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    connect_args = {"connect_timeout": STORE_CONNECT_TIMEOUT_S} if is_postgresql(url) else {}
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args, **pool_sizes())


def pool_sizes() -> dict[str, int]:
    size = get_settings().store_pool_size
    return {"pool_size": size, "max_overflow": max(0, API_THREADS - size)}


def is_postgresql(url: str) -> bool:
    return sa.engine.make_url(url).get_backend_name() == "postgresql"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def is_store_outage(exc: BaseException) -> bool:
    """Whether `exc` says that the store cannot be reached now (not that a statement is wrong)."""
    if isinstance(exc, (StoreUnavailable, *OUTAGE_ERRORS)):
        return True
    return isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated


def store_unavailable(exc: BaseException) -> StoreUnavailable:
    """The typed error for an outage; it names the driver's error class, never the URL."""
    return StoreUnavailable(f"the job store is unreachable ({type(exc).__name__})")


def store_answers() -> bool:
    """Whether the store answers `SELECT 1` now (a health check)."""
    try:
        with get_engine().connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError:
        return False
    return True


def commit_without_waiting_for_disk(session: Session) -> None:
    """For a transaction whose loss in a crash of the database server costs nothing but
    repeated work (a claim: its rows would simply still be `queued`): on PostgreSQL its commit
    returns without waiting for the disk (`synchronous_commit` off for this transaction only).
    Commits stay in order, so the next durable commit makes it durable too."""
    if session.get_bind().dialect.name == "postgresql":
        session.connection().exec_driver_sql("SET LOCAL synchronous_commit TO OFF")


@contextmanager
def read_scope() -> Iterator[Session]:
    """A session for lookups that change nothing, on an autocommit connection: no transaction
    is begun or committed, so a lookup asked on every request (the API key) is one round trip
    to PostgreSQL rather than three (BEGIN, the query, COMMIT).

    An outage of the store leaves as `StoreUnavailable`, as from `session_scope`.
    """
    engine = get_engine().execution_options(isolation_level="AUTOCOMMIT")
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
        except BaseException as exc:
            if is_store_outage(exc) and not isinstance(exc, StoreUnavailable):
                raise store_unavailable(exc) from exc
            raise


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session that commits when the block ends normally and rolls back otherwise.

    An outage of the store, in the block or at the commit, leaves as `StoreUnavailable`.
    """
    with Session(get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException as exc:
            _roll_back(session)
            if is_store_outage(exc) and not isinstance(exc, StoreUnavailable):
                raise store_unavailable(exc) from exc
            raise


def _roll_back(session: Session) -> None:
    """Roll back; over a connection that is gone there is nothing left to undo."""
    try:
        session.rollback()
    except sa.exc.SQLAlchemyError as exc:
        if not is_store_outage(exc):
            raise
