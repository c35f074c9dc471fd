"""Engines and sessions: one engine per process, SQLite tuned for many writers.

SQLite runs in WAL mode with a busy timeout, so the API, the worker's processes and beat can
write to one file; PostgreSQL connections are checked before use (`pool_pre_ping`).
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

from worker.settings import get_settings

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
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session that commits when the block ends normally and rolls back otherwise."""
    with Session(get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
