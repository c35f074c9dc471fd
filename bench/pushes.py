"""Receipts applied at the rate we send: pushes per second through HTTP, and 5C report records
per second, on a stack of real processes.

`measure_pushes()` starts its own redis-server, a database of its own in the PostgreSQL at
`postgres_url` (SQLite when None), one uvicorn API process and one Celery worker consuming the
`pushes` queue, then:

1. seeds `pushes` Veesing SMS deliveries as `submitted`, POSTs one receipt for each to the API's
   callback route (`senders` keep-alive connections, each waiting for its answer before the
   next), and waits until every delivery is `delivered`: pushes/s from the first request to the
   last delivery settled, and the rate of the HTTP answers alone;
2. seeds `fivec_records` 5C MMS deliveries as `submitted`, stores one pulled report page naming
   them all (as tasks/reports.py stores a page) and sends `herald.apply_pushes`: records/s from
   the send until the page is applied.

No beat runs: what is measured is the doorbell and the batches, not the sweep. The figures come
back as a dict; nothing is printed.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import redis
import sqlalchemy as sa

CALLBACK_TOKEN = "bench-callback-token"
STARTUP_TIMEOUT_S = 60.0


def measure_pushes(
    *,
    postgres_url: str | None = "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    pushes: int = 10_000,
    fivec_records: int = 100_000,
    senders: int = 32,
    worker_concurrency: int = 2,
    budget_s: float = 300.0,
) -> dict[str, float]:
    """Figures of one run: `pushes_per_s`, `answers_per_s`, `fivec_records_per_s` and the
    seconds each took."""
    with stack(postgres_url, worker_concurrency) as running:
        figures = measure_receipts(running, pushes=pushes, senders=senders, budget_s=budget_s)
        figures |= measure_fivec_page(running, records=fivec_records, budget_s=budget_s)
    return figures


@dataclass
class Stack:
    folder: Path
    env: dict[str, str]
    api_url: str
    engine: sa.Engine
    pids: dict[str, int]

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time each process (with its children) has used so far."""
        return {name: cpu_seconds(pid) for name, pid in self.pids.items()}


def cpu_seconds(pid: int) -> float:
    """User and system CPU of `pid`, of its children that ended and of those still running:
    on a machine others share, CPU per push says more than wall-clock rates."""
    ticks = os.sysconf("SC_CLK_TCK")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = sum(int(f) for f in fields[11:15]) / ticks
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                total += cpu_seconds(int(child))
            except FileNotFoundError:
                continue
    return total


def cpu_per_unit(
    before: dict[str, float], after: dict[str, float], units: int, prefix: str
) -> dict[str, float]:
    return {
        f"{prefix}_{name}_cpu_ms": 1000 * (after[name] - before[name]) / units for name in after
    }


def measure_receipts(
    running: Stack, *, pushes: int, senders: int, budget_s: float
) -> dict[str, float]:
    job_id = seed_submitted(running.engine, vendor="veesing", channel="sms", count=pushes)
    path = f"/callbacks/veesing/sms/{CALLBACK_TOKEN}"
    bodies = [
        urlencode({"mobile": phone, "taskid": ref, "status": "1", "code": "DELIVRD"}).encode()
        for phone, ref in recipients(job_id, pushes)
    ]
    cpu = running.cpu_seconds()
    started = time.monotonic()
    statuses = asyncio.run(post_all(running.api_url, path, bodies, senders))
    answered_s = time.monotonic() - started
    if statuses != {200: pushes}:
        raise RuntimeError(f"the API answered {statuses}")
    seconds = wait_settled(running.engine, job_id, pushes, budget_s=budget_s) - started
    return {
        "pushes": pushes,
        "pushes_seconds": seconds,
        "pushes_per_s": pushes / seconds,
        "answers_per_s": pushes / answered_s,
        **cpu_per_unit(cpu, running.cpu_seconds(), pushes, "push"),
    }


def measure_fivec_page(running: Stack, *, records: int, budget_s: float) -> dict[str, float]:
    from worker.app import app
    from worker.names import APPLY_PUSHES_TASK

    job_id = seed_submitted(running.engine, vendor="fivec", channel="mms", count=records)
    page = ";".join(
        f"{ref},{phone},DELIVRD,2026-11-29 12:00:00" for phone, ref in recipients(job_id, records)
    )
    payload = {
        "fetched_at": datetime.now(UTC).isoformat(),
        "body_base64": base64.b64encode(page.encode()).decode("ascii"),
        "bytes": str(len(page)),
        "encoding": "utf-8",
    }
    store_page(running, payload)
    cpu = running.cpu_seconds()
    started = time.monotonic()
    app.send_task(APPLY_PUSHES_TASK)
    seconds = wait_settled(running.engine, job_id, records, budget_s=budget_s) - started
    return {
        "fivec_records": records,
        "fivec_seconds": seconds,
        "fivec_records_per_s": records / seconds,
        **cpu_per_unit(cpu, running.cpu_seconds(), records, "fivec_record"),
    }


def store_page(running: Stack, payload: dict[str, str]) -> None:
    from worker.store.pushes import insert_push

    with sa.orm.Session(running.engine) as session:
        insert_push(session, vendor="fivec", kind="reports", payload=payload, now=datetime.now(UTC))
        session.commit()


def recipients(job_id: str, count: int) -> Iterator[tuple[str, str]]:
    """(phone, vendor_ref) of each seeded delivery: 100 numbers a batch, as a send makes them."""
    base = int(job_id[:6], 16) % 90
    for n in range(count):
        yield f"1{30 + base % 60:02d}{n:08d}", f"{int(job_id[:8], 16)}{n // 100:06d}"


def seed_submitted(engine: sa.Engine, *, vendor: str, channel: str, count: int) -> str:
    """One job of `count` deliveries, all `submitted` with their batch ids; its id."""
    from worker.store.models import Delivery, Job

    job_id = uuid.uuid4().hex
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            sa.insert(Job),
            [
                {
                    "id": job_id,
                    "channel": channel,
                    "vendor": vendor,
                    "content": "bench",
                    "created_at": now,
                }
            ],
        )
        rows = [
            {
                "job_id": job_id,
                "phone": phone,
                "vendor": vendor,
                "channel": channel,
                "send_alone": False,
                "status": "submitted",
                "vendor_ref": ref,
                "submitted_at": now,
                "updated_at": now,
            }
            for phone, ref in recipients(job_id, count)
        ]
        for start in range(0, len(rows), 10_000):
            connection.execute(sa.insert(Delivery), rows[start : start + 10_000])
    return job_id


def wait_settled(engine: sa.Engine, job_id: str, count: int, *, budget_s: float) -> float:
    """The moment (monotonic) the job's deliveries were seen all `delivered`, polled every
    0.05 s: the rows' own times are those of the start of the batch that moved them."""
    deadline = time.monotonic() + budget_s
    query = sa.text("SELECT count(*) FROM delivery WHERE job_id = :job AND status = :s")
    settled = 0
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            settled = connection.execute(query, {"job": job_id, "s": "delivered"}).scalar_one()
        if settled >= count:
            return time.monotonic()
        time.sleep(0.05)
    raise RuntimeError(f"only {settled} of {count} deliveries settled in {budget_s} s")


async def post_all(base_url: str, path: str, bodies: list[bytes], senders: int) -> dict[int, int]:
    """POST every body over `senders` keep-alive HTTP/1.1 connections; answers by status. A
    client this small leaves the CPU to the API being measured."""
    host, port = base_url.removeprefix("http://").split(":")
    queue = iter(bodies)
    statuses: dict[int, int] = {}

    async def sender() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for body in queue:
                writer.write(
                    f"POST {path} HTTP/1.1\r\nHost: {host}\r\n"
                    "Content-Type: application/x-www-form-urlencoded\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    await asyncio.gather(*(sender() for _ in range(senders)))
    return statuses


@contextmanager
def stack(postgres_url: str | None, worker_concurrency: int) -> Iterator[Stack]:
    folder = Path(tempfile.mkdtemp(prefix="herald-bench-pushes-"))
    children: list[subprocess.Popen[bytes]] = []
    drop: Callable[[], None] | None = None
    try:
        redis_port = free_port()
        children.append(
            spawn(
                folder,
                "redis",
                [
                    shutil.which("redis-server") or "redis-server",
                    "--port",
                    str(redis_port),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(folder),
                ],
                os.environ.copy(),
            )
        )
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        wait(lambda: answers_redis(redis_url), "redis-server")
        if postgres_url is None:
            store_url = f"sqlite:///{folder / 'store.db'}"
        else:
            store_url, drop = postgres_database(postgres_url)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("HERALD_")},
            "HERALD_DATABASE_URL": store_url,
            "HERALD_REDIS_URL": redis_url,
            "HERALD_CALLBACK_TOKEN": CALLBACK_TOKEN,
            "HERALD_DATA_DIR": str(folder / "data"),
        }
        os.environ.update(env)
        from worker.settings import get_settings
        from worker.store import migrate

        get_settings.cache_clear()
        migrate.upgrade(store_url)
        api_port = free_port()
        api = spawn(
            folder,
            "api",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "worker.api:api",
                "--host",
                "127.0.0.1",
                "--port",
                str(api_port),
                "--no-access-log",
            ],
            env,
        )
        children.append(api)
        worker = spawn(
            folder,
            "worker",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "worker",
                "worker",
                "-Q",
                "pushes",
                "-c",
                str(worker_concurrency),
                "--loglevel",
                "INFO",
            ],
            env,
        )
        children.append(worker)
        api_url = f"http://127.0.0.1:{api_port}"
        wait(lambda: answers_http(api_port), "the API")
        from worker.store import make_engine

        engine = make_engine(store_url)
        try:
            yield Stack(folder, env, api_url, engine, {"api": api.pid, "worker": worker.pid})
        finally:
            engine.dispose()
    finally:
        for child in reversed(children):
            child.terminate()
        for child in children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
        if drop is not None:
            drop()


def spawn(folder: Path, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = (folder / f"{name}.log").open("wb")
    return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)


def postgres_database(base: str) -> tuple[str, Callable[[], None]]:
    import psycopg

    admin = base.replace("postgresql+psycopg://", "postgresql://")
    name = f"herald_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return base.rsplit("/", 1)[0] + "/" + name, drop


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers_redis(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def answers_http(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return sock.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def wait(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not start within {STARTUP_TIMEOUT_S} s")
