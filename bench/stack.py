"""The bench's own stack: a private redis-server, a fresh store, the vendor sandbox standing in
for every vendor (its receipts pushed to the API's callback URLs), the API under uvicorn, a real
Celery worker and beat; and, for the plain-Celery figure, a worker of the tiny no-op app.

The processes are started as the integration tests start them (`tests.support`), and the
settings that point them at each other are `herald up`'s (`worker.up_config.sandbox_settings`).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx
import psycopg
from sqlalchemy.engine import Engine

from tests.support import PYTHON, Child, RedisServer, free_port, start_child, wait_http
from worker.store import make_engine, migrate
from worker.up_config import sandbox_settings

StoreKind = Literal["sqlite", "postgresql"]
POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CALLBACK_TOKEN = "bench-callback-token"
SANDBOXED_VENDORS = ("veesing", "chuangrui", "fivec")
HERALD_DB, NOOP_DB = 0, 1
"""Redis databases: herald's broker and limits, and the no-op app's broker."""
MAX_BODY_BYTES = 64 * 1024 * 1024
FIVEC_POLL_INTERVAL_S = 3
"""Beat's 5C poll expires after its interval: on a busy machine a 1 s poll is mostly dropped."""
UNLIMITED_REQUEST_RATE = json.dumps(
    {
        product: {"requests_per_second": None}
        for product in ("veesing:sms", "chuangrui:sms", "fivec:mms")
    }
)
"""The sandbox enforces no request rate, so herald's pacing of vendor calls (20/s by default)
is lifted: the bench measures herald, not a contract's figure. The per-number rules stay."""


def postgres_answers() -> bool:
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


@dataclass
class Store:
    """A fresh, migrated store: a SQLite file, or a PostgreSQL database dropped afterwards."""

    kind: StoreKind
    url: str
    database: str | None = None

    @classmethod
    def create(cls, kind: StoreKind, folder: Path) -> Store:
        if kind == "sqlite":
            store = cls(kind, f"sqlite:///{folder / 'store.db'}")
        else:
            name = f"herald_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
            with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            store = cls(kind, f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", name)
        migrate.upgrade(store.url)
        return store

    def drop(self) -> None:
        if self.database is not None:
            with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')


@dataclass
class HeraldStack:
    """Sandbox, API, worker and beat on one store; `engine` reads the store for the figures."""

    store: Store
    folder: Path
    env: dict[str, str]
    api_url: str
    sandbox_url: str
    engine: Engine
    children: dict[str, Child] = field(default_factory=dict)

    @property
    def worker(self) -> Child:
        return self.children["worker"]

    def callback_url(self, product: str) -> str:
        return f"{self.api_url}/callbacks/veesing/{product}/{CALLBACK_TOKEN}"

    def sandbox(self, method: str, path: str, **kwargs: object) -> object:
        response = httpx.request(
            method,
            f"{self.sandbox_url}{path}",
            timeout=120,
            **kwargs,  # type: ignore[arg-type]
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def start(self, name: str, argv: list[str], extra_env: dict[str, str] | None = None) -> Child:
        child = start_child(name, argv, {**self.env, **(extra_env or {})}, self.folder / "logs")
        self.children[name] = child
        return child

    def stop(self) -> None:
        for child in reversed(list(self.children.values())):
            child.stop()
        self.engine.dispose()


def clean_environ() -> dict[str, str]:
    """The bench's environment without any HERALD_ or SANDBOX_ setting of the caller's."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("HERALD_", "SANDBOX_"))}


def herald_env(folder: Path, store: Store, redis: RedisServer, concurrency: int) -> dict[str, str]:
    return {
        "HERALD_DATA_DIR": str(folder / "data"),
        "HERALD_DATABASE_URL": store.url,
        "HERALD_REDIS_URL": redis.url(HERALD_DB),
        "HERALD_CALLBACK_TOKEN": CALLBACK_TOKEN,
        "HERALD_MAX_RECIPIENTS": "1000000",
        "HERALD_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
        "HERALD_LIMITS": UNLIMITED_REQUEST_RATE,
        "HERALD_FIVEC_POLL_INTERVAL_S": str(FIVEC_POLL_INTERVAL_S),
        "HERALD_WORKER_CONCURRENCY": str(concurrency),
    }


def sandbox_env(folder: Path) -> dict[str, str]:
    """The sandbox as a vendor that takes everything the bench sends: no account cap to reach,
    a balance that never runs out, and the whole 5C report queue in one `recv` page."""
    return {
        "SANDBOX_ACCOUNT_DAILY_CAP": str(10**9),
        "SANDBOX_BALANCE": str(10**12),
        "SANDBOX_FIVEC_RECV_MAX": "0",
        "SANDBOX_LOG_FILE": str(folder / "sandbox-sends.jsonl"),
    }


def celery(*args: str) -> list[str]:
    return [PYTHON, "-m", "celery", *args]


def celery_worker(app: str, concurrency: int, hostname: str) -> list[str]:
    """A prefork worker of `app`, logging at INFO as `herald up` runs it."""
    return [
        *celery("-A", app, "worker", "--loglevel", "INFO", "--concurrency", str(concurrency)),
        "--hostname",
        hostname,
    ]


@contextmanager
def private_redis(folder: Path) -> Iterator[RedisServer]:
    server = RedisServer(folder / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def herald_stack(
    kind: StoreKind, redis: RedisServer, folder: Path, *, concurrency: int
) -> Iterator[HeraldStack]:
    """The whole of herald on a fresh store of `kind`; everything stopped (and a PostgreSQL
    database dropped) on the way out."""
    folder.mkdir(parents=True, exist_ok=True)
    store = Store.create(kind, folder)
    api_port, sandbox_port = free_port(), free_port()
    api_url, sandbox_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{sandbox_port}"
    to_sandbox, from_sandbox = sandbox_settings(
        sandbox_url, api_url, CALLBACK_TOKEN, SANDBOXED_VENDORS
    )
    env = clean_environ() | herald_env(folder, store, redis, concurrency) | to_sandbox
    stack = HeraldStack(store, folder, env, api_url, sandbox_url, make_engine(store.url))
    try:
        sandbox = stack.start(
            "sandbox",
            [PYTHON, "-m", "worker.sandbox", "--host", "127.0.0.1", "--port", str(sandbox_port)],
            from_sandbox | sandbox_env(folder),
        )
        api = stack.start(
            "api",
            [
                PYTHON,
                "-m",
                "uvicorn",
                "worker.api:api",
                "--host",
                "127.0.0.1",
                "--port",
                str(api_port),
            ],
        )
        stack.start(
            "worker",
            celery_worker("worker", concurrency, f"bench{os.getpid()}@%h"),
        )
        stack.start(
            "beat",
            celery("-A", "worker", "beat", "--schedule", str(folder / "beat-schedule")),
        )
        wait_http(f"{sandbox_url}/_sandbox/log", sandbox)
        wait_http(f"{api_url}/healthz", api)
        wait_for_worker(stack)
        yield stack
    finally:
        stack.stop()
        store.drop()


def wait_for_worker(stack: HeraldStack, timeout_s: float = 60) -> None:
    """Until the worker's log says it is ready to consume."""
    deadline = time.monotonic() + timeout_s
    while "ready." not in stack.worker.log():
        if not stack.worker.alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the worker did not start:\n{stack.worker.log()[-3000:]}")
        time.sleep(0.2)


@contextmanager
def noop_worker(redis: RedisServer, folder: Path, *, concurrency: int) -> Iterator[Child]:
    """A worker of the tiny plain-Celery app (`bench.noop_app`) on the same Redis."""
    env = clean_environ() | {"BENCH_NOOP_BROKER": redis.url(NOOP_DB)}
    child = start_child(
        "noop-worker",
        celery_worker("bench.noop_app", concurrency, f"noop{os.getpid()}@%h"),
        env,
        folder / "logs",
    )
    try:
        deadline = time.monotonic() + 60
        while "ready." not in child.log():
            if not child.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the no-op worker did not start:\n{child.log()[-3000:]}")
            time.sleep(0.2)
        yield child
    finally:
        child.stop()


def run_folder() -> Path:
    return Path(tempfile.mkdtemp(prefix="herald-bench-"))
