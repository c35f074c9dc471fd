"""Chaos 2: the broker's redis-server killed with SIGKILL mid-run, then started again: with the
append-only file on (what it held comes back, but for the last second), then with persistence
off (every queued task, unacked task, limit counter and breaker is gone).

Jobs keep arriving while Redis is down: the API must still accept them (the store is the record;
the broker is a doorbell), and the sweeper must enqueue whatever Redis forgot.

Celery itself does not always survive the kill (a worker that exits with `Unrecoverable error`,
or stays alive without consuming, or hangs in its shutdown: docs/reliability.md). The harness
restarts a worker that exited, as a supervisor does, and notes it; one that stopped consuming
exits on its own through its liveness check (worker/liveness.py), so the wait allows for that.
A send in flight at the kill must finish and be recorded: no recipient may end `unknown`.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

import pytest

from tests.chaos.conftest import Sizes, SystemFactory, record, verdict
from tests.chaos.ledger import STALL_S, Ledger, chunks, phones, sweep_totals
from tests.chaos.system import WORKER_STOP_GRACE_S, ChaosSystem
from tests.support import Child, wait_until

pytestmark = pytest.mark.chaos

DOWN_S = 8.0


@pytest.fixture(scope="module")
def system(start_system: SystemFactory) -> ChaosSystem:
    return start_system(appendonly=True)


def kill_redis_mid_run(system: ChaosSystem, sizes: Sizes, ledger: Ledger, number: int) -> None:
    """Kill Redis while a send is in flight (the sandbox answers sends 1.5 s late, so the task
    ends, and would ack, while Redis is down), submit the rest of the jobs while it is down,
    start it again after DOWN_S: longer than the suite's soft time limit (6 s), as an outage
    longer than the production one (90 s) would be."""
    marks = system.log_marks()
    system.sandbox("POST", "/_sandbox/faults", json={"latency_s": 1.5, "paths": ["/smsApi"]})
    jobs = chunks(phones(number, sizes.recipients), sizes.per_job)
    half = len(jobs) // 2
    try:
        for job in jobs[:half]:
            ledger.submit_sms(job)
        wait_until(lambda: ledger.in_flight()["sending"] > 0, timeout_s=20, what="a send")
        in_flight = ledger.in_flight()
        system.redis.kill9()
        producer = threading.Thread(target=lambda: [ledger.submit_sms(job) for job in jobs[half:]])
        producer.start()
        time.sleep(DOWN_S)
        system.redis.start()
        restarted = system.log_marks()
        producer.join()
    finally:
        system.sandbox("POST", "/_sandbox/faults", json={"latency_s": 0.0})
    supervise: dict[str, Callable[[], Child]] = {
        "worker": system.start_worker,
        "beat": system.start_beat,
    }
    settled = ledger.wait_settled(
        sizes.settle_s + WORKER_STOP_GRACE_S,
        tick=lambda: system.revive(ledger.row.notes, supervise),
        stall_s=WORKER_STOP_GRACE_S + STALL_S,
    )
    row = record(ledger, settled=settled)
    if row.unknown:
        row.problems.append(f"{row.unknown} unknown: a broker outage alone must leave none")
    after = system.logs_since(restarted)
    received = len(re.findall(r"Task herald\.send_job\[[^\]]+\] received", after))
    row.notes.append(
        f"in flight at the kill: {dict(in_flight)}; Redis down {DOWN_S:.0f} s; "
        f"send tasks received after the restart: {received}; "
        f"sweeps: {dict(sweep_totals(system.logs_since(marks)))}"
    )
    if not system.children["api"].alive():
        row.problems.append("api exited")
    verdict(row, system)


def test_redis_kill9_with_append_only_file(system: ChaosSystem, sizes: Sizes) -> None:
    kill_redis_mid_run(system, sizes, Ledger(system, "Redis kill -9 (AOF on)", "ra"), 20)


def test_redis_kill9_without_persistence(system: ChaosSystem, sizes: Sizes) -> None:
    for name in ("beat", "worker"):  # fresh processes: this scenario's kill is their first
        system.children[name].stop()
    system.redis.stop()
    system.redis.appendonly = False
    system.redis.start()
    system.start_worker()
    system.start_beat()
    system.wait_worker_ready()
    kill_redis_mid_run(system, sizes, Ledger(system, "Redis kill -9 (no persistence)", "rn"), 21)
