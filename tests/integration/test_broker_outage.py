"""Integration: Redis killed with `kill -9` while sends are under way, then started again.

The module runs its own redis-server (not the test run's), so killing it disturbs no other
module: once with the append-only file on (queued tasks survive the restart), once with
persistence off (Redis comes back empty, and the store's sweeper rings again for what the broker
forgot). Each time every recipient must end delivered and be sent exactly once, none may be
`unknown` unless its call reached the vendor, and the worker must consume again: by itself, or by
exiting (its liveness check) and being started again by a supervisor, which this test plays.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.conftest import RUN_DIR
from tests.integration.conftest import FINAL_OR_SETTLED, System
from tests.support import RedisServer, die_with_parent, need, wait_until
from worker.liveness import EXIT_CODE

pytestmark = pytest.mark.integration


@dataclass
class KillableRedis(RedisServer):
    """A redis-server this module kills with SIGKILL and starts again, with or without its
    append-only file."""

    appendonly: bool = True

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server")
        self.folder.mkdir(parents=True, exist_ok=True)
        persistence = ["--appendonly", "yes", "--appendfsync", "everysec"]
        self.process = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.folder)]
            + ["--save", ""]
            + (persistence if self.appendonly else ["--appendonly", "no"])
            + ["--maxmemory-policy", "noeviction"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        wait_until(self.answers, timeout_s=10, what="redis-server")

    def kill_hard(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def forget_everything(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


BROKER = KillableRedis(RUN_DIR / "outage-redis")
SYSTEM_ENV = {
    "HERALD_REDIS_URL": BROKER.url(0),
    "HERALD_LIVENESS_INTERVAL_S": "1",
    "HERALD_LIVENESS_TIMEOUT_S": "12",  # more than the task limit (9 s) and the interval
    "HERALD_VISIBILITY_TIMEOUT_S": "20",
}
JOBS = 8
NUMBERS_PER_JOB = 5
VENDOR_LATENCY_S = 1.5
OUTAGE_S = 3.0


@pytest.fixture(scope="module", autouse=True)
def broker() -> Iterator[KillableRedis]:
    """Started before the module's system (an autouse fixture comes first in its scope)."""
    if shutil.which("redis-server") is None:
        need("redis-server")
    BROKER.start()
    yield BROKER
    BROKER.stop()


@dataclass
class Supervisor:
    """What compose's `restart: unless-stopped` does: a part that exited is started again."""

    system: System
    exits: list[tuple[str, int]] = field(default_factory=list)

    def restart_what_exited(self) -> None:
        for name, child in list(self.system.children.items()):
            if child.process is not None and child.process.poll() is not None:
                self.exits.append((name, child.process.returncode))
                self.system.start(name, child.argv)


def phones_of(batch: int) -> list[list[str]]:
    return [[f"1{batch}6{job:03d}{n:05d}" for n in range(NUMBERS_PER_JOB)] for job in range(JOBS)]


def settle_supervised(
    system: System, supervisor: Supervisor, job_ids: list[str], *, timeout_s: float
) -> list[dict[str, Any]]:
    jobs: dict[str, dict[str, Any]] = {}

    def settled() -> bool:
        supervisor.restart_what_exited()
        for job_id in job_ids:
            if job_id not in jobs:
                job = system.job(job_id)
                if all(r["status"] in FINAL_OR_SETTLED - {"unknown"} for r in job["recipients"]):
                    jobs[job_id] = job
        return len(jobs) == len(job_ids)

    try:
        wait_until(settled, timeout_s=timeout_s, what="every recipient to be final")
    except AssertionError:
        open_jobs = [system.job(j) for j in job_ids if j not in jobs][:2]
        raise AssertionError(f"not final: {open_jobs}\n{system.logs_tail()}") from None
    return [jobs[j] for j in job_ids]


def ever_unknown(engine: Engine, job_ids: list[str]) -> set[str]:
    """Phones of recipients that were `unknown` at some point, whatever they are now."""
    statement = sa.text(
        "SELECT DISTINCT d.phone FROM deliveryevent e JOIN delivery d ON d.id = e.delivery_id "
        "WHERE e.to_status = 'unknown' AND d.job_id IN ("
        + ", ".join(f"'{job_id}'" for job_id in job_ids)
        + ")"
    )
    with engine.connect() as connection:
        return {row[0] for row in connection.execute(statement)}


def kill_redis_during_sends(
    system: System, broker: KillableRedis, engine: Engine, *, batch: int, keep_data: bool
) -> None:
    supervisor = Supervisor(system)
    system.sandbox("POST", "/_sandbox/faults", json={"latency_s": VENDOR_LATENCY_S})
    numbers = phones_of(batch)
    everyone = [phone for phones in numbers for phone in phones]
    job_ids = [system.send_sms(phones) for phones in numbers]
    wait_until(
        lambda: any(s["phone"] in everyone for s in system.sandbox_sends()),
        timeout_s=30,
        what="the first vendor call",
    )

    broker.kill_hard()
    time.sleep(OUTAGE_S)
    if not keep_data:
        broker.forget_everything()
    broker.appendonly = keep_data
    broker.start()
    system.sandbox("POST", "/_sandbox/faults", json={"latency_s": 0.0})

    jobs = settle_supervised(system, supervisor, job_ids, timeout_s=150)

    statuses = Counter(r["status"] for job in jobs for r in job["recipients"])
    assert statuses == Counter({"delivered": len(everyone)}), statuses
    sent = Counter(s["phone"] for s in system.sandbox_sends() if s["phone"] in everyone)
    assert sent == Counter(dict.fromkeys(everyone, 1)), "a number was sent twice, or never"
    assert not ever_unknown(engine, job_ids), "a broker outage alone turned a send unknown"
    worker_log = system.children["worker"].log()
    assert "Terminating it instead" not in worker_log, "a running send was cancelled"
    for name, code in supervisor.exits:
        # The worker exits by itself after Celery's own "Unrecoverable error" (code 1), or the
        # liveness check ends a worker left alive without consuming (EXIT_CODE): either way the
        # supervisor starts a new one. Nothing else may exit.
        assert name == "worker" and code in (1, EXIT_CODE), (supervisor.exits, system.logs_tail())

    # And the worker (the same one, or the one started after it exited) consumes new work.
    after = system.send_sms([f"1{batch}799999999"])
    (job,) = settle_supervised(system, supervisor, [after], timeout_s=60)
    assert job["recipients"][0]["status"] == "delivered"


def test_redis_killed_and_restarted_with_its_append_only_file(
    system: System, broker: KillableRedis, engine: Engine
) -> None:
    kill_redis_during_sends(system, broker, engine, batch=3, keep_data=True)


def test_redis_killed_and_restarted_empty(
    system: System, broker: KillableRedis, engine: Engine
) -> None:
    kill_redis_during_sends(system, broker, engine, batch=4, keep_data=False)


def test_a_worker_that_stops_consuming_exits_for_its_supervisor(
    system: System, broker: KillableRedis
) -> None:
    """Celery's own failure to consume after a reconnect cannot be caused on purpose, so the
    worker is told to stop consuming its own queue, which is what the probe goes through."""
    from celery import Celery

    worker = system.children["worker"]
    log_before = len(worker.log())
    hostname = re.findall(r"a probe every .* to (\S+)\.dq2;", worker.log())[-1]
    control = Celery(broker=broker.url(0))
    replies = control.control.cancel_consumer(
        f"{hostname}.dq2", destination=[hostname], reply=True, timeout=5
    )
    assert replies, "the worker did not answer"

    assert worker.process is not None
    code = worker.process.wait(timeout=60)

    assert code == EXIT_CODE
    assert "no liveness probe was consumed" in worker.log()[log_before:]
    supervisor = Supervisor(system)
    supervisor.restart_what_exited()
    after = system.send_sms(["15799999998"])
    (job,) = settle_supervised(system, supervisor, [after], timeout_s=60)
    assert job["recipients"][0]["status"] == "delivered"
