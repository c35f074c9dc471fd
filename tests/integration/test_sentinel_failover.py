"""Integration: beyond one machine. Several worker hosts on one Redis and one PostgreSQL, and
that Redis behind Redis Sentinel, whose master is killed mid-run.

The module runs its own Redis group: a master, one replica (`--replicaof`) and three sentinels
(quorum 2, the master presumed down after 1 s). HERALD_REDIS_URL names the three sentinels
(`sentinel://...;...`), so Celery's broker and herald's own client (limits, locks, breakers)
both ask them where the master is. The store is a PostgreSQL database of the module's own.

- Two worker processes with different hostnames share one big job: both send batches of it,
  and every number is sent once.
- The master is killed with SIGKILL while sends are in flight; the sentinels promote the
  replica, and every recipient is delivered, each sent exactly once, none lost, and no number
  gets two messages within the (shortened) minute rule.

Redis replicates asynchronously: a write the old master acknowledged just before it died may
never reach the replica. For the broker that is a queued or unacked task: the store still has
the recipients `queued` (or `claimed`), and the sweeper enqueues the job again after
HERALD_REQUEUE_AFTER_S (2 s here) or takes the claim back after its lease, so the test waits
for final states rather than for the broker. For the limits it would be a number's minute key:
the sandbox applies the same minute rule as the vendor does, so a message herald let through
too early would show as a refusal in the sandbox's request log; the test counts those and
requires none (on one machine the replica is microseconds behind, and the worker's own confirm
after the call restarts the minute on the new master).
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import signal
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import RUN_DIR, make_postgres_database
from tests.integration.conftest import FINAL_OR_SETTLED, System
from tests.support import PYTHON, die_with_parent, free_port, need, wait_until
from worker.liveness import EXIT_CODE
from worker.sandbox.veesing_common import MINUTE_RULE

pytestmark = pytest.mark.integration

MASTER_NAME = "herald-test-master"
MINUTE_S = 2.0
BATCH_SIZE = 10
VENDOR_LATENCY_S = 1.0


@dataclass
class SentinelGroup:
    """A master, a replica and three sentinels on free ports, as child processes."""

    folder: Path
    master_port: int = field(default_factory=free_port)
    replica_port: int = field(default_factory=free_port)
    sentinel_ports: list[int] = field(default_factory=lambda: [free_port() for _ in range(3)])
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def url(self) -> str:
        return ";".join(f"sentinel://127.0.0.1:{port}/0" for port in self.sentinel_ports)

    def start(self) -> None:
        server = shutil.which("redis-server")
        sentinel = shutil.which("redis-sentinel")
        assert server is not None and sentinel is not None
        self.folder.mkdir(parents=True, exist_ok=True)
        plain = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.spawn("master", [server, "--port", str(self.master_port), *plain, *self.dir("m")])
        wait_until(lambda: self.client(self.master_port).ping(), timeout_s=10, what="master")
        replica_of = ["--replicaof", "127.0.0.1", str(self.master_port)]
        self.spawn(
            "replica",
            [server, "--port", str(self.replica_port), *plain, *replica_of, *self.dir("r")],
        )
        for number, port in enumerate(self.sentinel_ports):
            config = self.folder / f"sentinel-{number}.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.folder}\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master_port} 2\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
                f"sentinel failover-timeout {MASTER_NAME} 4000\n"
                f"sentinel parallel-syncs {MASTER_NAME} 1\n"
            )
            self.spawn(f"sentinel-{number}", [sentinel, str(config)])
        wait_until(self.ready, timeout_s=30, what="the replica in sync and the sentinels met")

    def dir(self, name: str) -> list[str]:
        """A server's own folder: a replica writes the master's data there when it syncs."""
        (self.folder / name).mkdir(exist_ok=True)
        return ["--dir", str(self.folder / name)]

    def spawn(self, name: str, argv: list[str]) -> None:
        with (self.folder / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent
            )

    @staticmethod
    def client(port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_connect_timeout=0.5, decode_responses=True)

    def ready(self) -> bool:
        try:
            if self.client(self.replica_port).info("replication")["master_link_status"] != "up":
                return False
            for port in self.sentinel_ports:
                state = self.client(port).sentinel_master(MASTER_NAME)
                if state["num-other-sentinels"] < 2 or state["num-slaves"] < 1:
                    return False
        except redis.RedisError:
            return False
        return True

    def master_port_now(self) -> int | None:
        """The master's port as the first sentinel that answers names it."""
        for port in self.sentinel_ports:
            try:
                address = self.client(port).sentinel_get_master_addr_by_name(MASTER_NAME)
            except redis.RedisError:
                continue
            return int(address[1]) if address else None
        return None

    def kill_master(self) -> None:
        process = self.processes.pop("master")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=10)
        self.processes.clear()


GROUP = SentinelGroup(RUN_DIR / "sentinel-group")
SYSTEM_ENV = {
    "HERALD_REDIS_URL": GROUP.url(),
    "HERALD_REDIS_SENTINEL_MASTER": MASTER_NAME,
    "HERALD_BATCH_SIZE": str(BATCH_SIZE),
    "HERALD_LIMITS": json.dumps({"veesing:sms": {"minute_s": MINUTE_S, "per_number_daily": 50}}),
    "SANDBOX_MINUTE_RULE_S": str(MINUTE_S),
    "SANDBOX_PER_NUMBER_DAILY_CAP": "50",
    # One send task sends all of a job's batches in turn, within the task's time limit: the
    # 9 s of the other modules would cut the big job short.
    "HERALD_TASK_TIME_LIMIT_S": "30",
    "HERALD_SENDING_TIMEOUT_S": "60",
    "HERALD_VISIBILITY_TIMEOUT_S": "70",
    "HERALD_LIVENESS_INTERVAL_S": "1",
    "HERALD_LIVENESS_TIMEOUT_S": "40",
    # A second host joins a job when the sweeper enqueues it again: soon, for the big job.
    "HERALD_REQUEUE_AFTER_S": "2",
}


@pytest.fixture(scope="module", autouse=True)
def sentinel_group() -> Iterator[SentinelGroup]:
    """Started before the module's system (an autouse fixture comes first in its scope)."""
    for binary in ("redis-server", "redis-sentinel"):
        if shutil.which(binary) is None:
            need(binary)
    GROUP.start()
    yield GROUP
    GROUP.stop()


@pytest.fixture(scope="module", autouse=True)
def postgres_store(sentinel_group: SentinelGroup) -> Iterator[str]:
    """The module's store: a PostgreSQL database of its own (set before the system starts)."""
    url, drop = make_postgres_database()
    SYSTEM_ENV["HERALD_DATABASE_URL"] = url
    yield url
    drop()


def worker_argv(nodename: str) -> list[str]:
    celery = [PYTHON, "-m", "celery", "-A", "worker", "worker", "--loglevel", "INFO"]
    return [*celery, "--concurrency", "1", "--hostname", nodename]


@pytest.fixture(scope="module")
def two_hosts(system: System) -> list[str]:
    """The module's worker replaced by two, as on two machines: their names in `children`."""
    system.children.pop("worker").stop()
    system.start("worker-host-a", worker_argv("herald@host-a"))
    system.start("worker-host-b", worker_argv("herald@host-b"))
    return ["worker-host-a", "worker-host-b"]


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


VENDOR_CALLS = re.compile(r"herald\.send_job\[[^\]]+\] succeeded in [0-9.]+s: '(\d+) vendor calls'")


def test_two_worker_hosts_share_one_big_job(system: System, two_hosts: list[str]) -> None:
    phones = [f"1350000{n:04d}" for n in range(400)]
    system.sandbox("POST", "/_sandbox/faults", json={"latency_s": 0.3})
    try:
        job_id = system.send_sms(phones, content="【Herald】两台机器")
        (job,) = system.wait_settled([job_id], timeout_s=120)
    finally:
        system.sandbox("POST", "/_sandbox/faults", json={"latency_s": 0.0})

    assert Counter(r["status"] for r in job["recipients"]) == Counter({"delivered": 400})
    sent = Counter(s["phone"] for s in system.sandbox_sends() if s["phone"] in set(phones))
    assert sent == Counter(dict.fromkeys(phones, 1)), "a number was sent twice, or never"
    calls = {
        name: sum(int(n) for n in VENDOR_CALLS.findall(system.children[name].log()))
        for name in two_hosts
    }
    assert all(calls.values()), f"one host sent no batch of the job: {calls}"
    assert sum(calls.values()) == len(phones) // BATCH_SIZE, calls
    print(f"two hosts, one job of 400: vendor calls by host {calls}; each number sent once")


def minute_refusals(system: System, since: float) -> int:
    """Calls the sandbox refused for the minute rule: messages herald let through too early."""
    requests = system.sandbox("GET", "/_sandbox/requests")
    return sum(
        1
        for entry in requests
        if entry.get("start", 0) >= since and MINUTE_RULE in json.dumps(entry, ensure_ascii=False)
    )


def test_the_redis_master_killed_mid_run_loses_and_repeats_nothing(
    system: System, sentinel_group: SentinelGroup
) -> None:
    started = time.time()
    supervisor = Supervisor(system)
    numbers = [f"1360000{n:04d}" for n in range(20)]
    contents = [f"【Herald】第{j}轮" for j in range(10)]
    system.sandbox("POST", "/_sandbox/faults", json={"latency_s": VENDOR_LATENCY_S})
    job_ids = [system.send_sms(numbers, content=content) for content in contents]
    wait_until(
        lambda: sum(s["phone"] in numbers for s in system.sandbox_sends()) >= 2 * len(numbers),
        timeout_s=60,
        what="two rounds of sends",
    )

    old_master = sentinel_group.master_port
    sentinel_group.kill_master()
    killed_at = time.monotonic()
    wait_until(
        lambda: sentinel_group.master_port_now() == sentinel_group.replica_port,
        timeout_s=60,
        what="the sentinels to promote the replica",
    )
    promoted_after_s = time.monotonic() - killed_at
    system.sandbox("POST", "/_sandbox/faults", json={"latency_s": 0.0})

    jobs = settle_supervised(system, supervisor, job_ids, timeout_s=180)

    recipients = [r for job in jobs for r in job["recipients"]]
    statuses = Counter(r["status"] for r in recipients)
    assert statuses == Counter({"delivered": len(numbers) * len(contents)}), statuses
    sends = [s for s in system.sandbox_sends() if s["phone"] in numbers]
    sent = Counter((s["phone"], s["content"]) for s in sends)
    expected = Counter({(phone, content): 1 for phone in numbers for content in contents})
    assert sent == expected, "a recipient was sent twice, or never"
    lost = len(recipients) - statuses["delivered"]
    at: dict[str, list[datetime]] = defaultdict(list)
    for entry in sends:
        at[entry["phone"]].append(datetime.fromisoformat(entry["at"]))
    gaps = [
        (b - a).total_seconds()
        for times in at.values()
        for a, b in itertools.pairwise(sorted(times))
    ]
    assert min(gaps) >= MINUTE_S * 0.95, f"a number got two messages within {MINUTE_S} s"
    refusals = minute_refusals(system, started)
    assert refusals == 0, f"{refusals} calls broke the minute rule"
    for name, code in supervisor.exits:
        assert name.startswith("worker") and code == EXIT_CODE, (
            supervisor.exits,
            system.logs_tail(),
        )

    print(
        f"sentinel failover: master :{old_master} killed, replica :{sentinel_group.replica_port}"
        f" promoted after {promoted_after_s:.1f} s; recipients {len(recipients)}, delivered "
        f"{statuses['delivered']}, sent once {sum(n == 1 for n in sent.values())}, sent twice "
        f"{sum(n > 1 for n in sent.values())}, lost {lost}; minute rule: smallest gap "
        f"{min(gaps):.2f} s, refusals {refusals}; workers restarted {len(supervisor.exits)}"
    )
