"""Chaos 1 and 6: workers killed at random points, a doubled beat, a worker that stops
consuming while it stays alive. One system, the scenarios in turn.

Killing: jobs arrive in waves while a worker is SIGKILLed at a random moment of its work
(the sandbox answers each send 50 ms late, so a kill often lands inside a vendor call): every
other kill takes one pool process (the main process replaces it), the others the whole worker
(main process and pool), which is started again.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from tests.chaos.conftest import Sizes, SystemFactory, record, verdict
from tests.chaos.ledger import SETTLED, Ledger, chunks, phones, sweep_totals
from tests.chaos.system import SENDING_TIMEOUT_S, ChaosSystem
from tests.support import wait_until

pytestmark = pytest.mark.chaos


@pytest.fixture(scope="module")
def system(start_system: SystemFactory) -> ChaosSystem:
    return start_system()


def test_sigkill_a_worker_at_random_points(system: ChaosSystem, sizes: Sizes) -> None:
    rng = random.Random(1)
    ledger = Ledger(system, f"SIGKILL worker x{sizes.kills}", "k")
    marks = system.log_marks()
    system.sandbox("POST", "/_sandbox/faults", json={"latency_s": 0.3})
    jobs = chunks(phones(10, sizes.kill_recipients), sizes.per_job)
    waves = [jobs[i :: sizes.kills] for i in range(sizes.kills)]
    kinds: list[str] = []
    hit: Counter[str] = Counter()
    try:
        for n, wave in enumerate(waves):
            for job in wave:
                ledger.submit_sms(job)
            time.sleep(rng.uniform(0.2, 1.5))
            hit.update(ledger.in_flight())
            pool = system.pool_children()
            if n % 2 == 0 and pool:
                victim = rng.choice(pool)
                os.kill(victim, signal.SIGKILL)
                wait_until(  # the main process noticed, and replaces it
                    partial(noticed, system, victim),
                    timeout_s=10,
                    what=f"the worker to notice its pool process {victim} was killed",
                )
                kinds.append("pool process")
            else:
                system.children["worker"].kill_hard()
                system.start_worker()
                system.wait_worker_ready()
                kinds.append("whole worker")
    finally:
        system.sandbox("POST", "/_sandbox/faults", json={"latency_s": 0.0})
    settled = ledger.wait_settled(sizes.settle_s + SENDING_TIMEOUT_S)
    row = record(ledger, settled=settled)
    row.notes.append(
        f"kills: {kinds.count('pool process')} of a pool process, "
        f"{kinds.count('whole worker')} of the whole worker; in flight at the kills: {dict(hit)};"
        f" sweeps: {dict(sweep_totals(system.logs_since(marks)))}"
    )
    verdict(row, system)


def noticed(system: ChaosSystem, pid: int) -> bool:
    return f"pid:{pid} exited" in system.log_since_start("worker")


def test_beat_doubled(system: ChaosSystem, sizes: Sizes) -> None:
    """Two beats: every release, sweep and poll is sent twice. Some jobs wait for a send_at,
    and a third of the sends meet a retry-able error, so deferred recipients are released by
    both beats' `release_due` at once."""
    ledger = Ledger(system, "beat doubled", "b")
    system.start_beat("beat2")
    system.sandbox(
        "POST",
        "/_sandbox/faults",
        json={"error_rate": 0.3, "errors": ["reply", "503"], "paths": ["/smsApi/group"]},
    )
    try:
        send_at = (datetime.now(UTC) + timedelta(seconds=6)).isoformat()
        for n, job in enumerate(chunks(phones(60, sizes.recipients), sizes.per_job)):
            extra: dict[str, Any] = {"send_at": send_at} if n % 2 else {}
            ledger.submit_sms(job, **extra)
        settled = ledger.wait_settled(sizes.settle_s)
    finally:
        system.sandbox("POST", "/_sandbox/faults", json={"error_rate": 0.0})
        system.children["beat2"].stop()
    row = record(ledger, settled=settled)
    beats = sum(
        "Scheduler: Sending due task release-due" in system.log_since_start(b)
        for b in ("beat", "beat2")
    )
    row.notes.append(f"beats sending release-due: {beats}")
    verdict(row, system)


def test_a_worker_stops_consuming_while_alive(system: ChaosSystem, sizes: Sizes) -> None:
    """A second worker is frozen (SIGSTOP: alive, holding what it took, consuming nothing)
    while jobs keep coming: the first worker and beat must settle everything without it. Then
    it is let go, and what it held must not be sent a second time."""
    ledger = Ledger(system, "worker stops consuming", "s")
    system.start_worker(name="worker2")
    system.wait_worker_ready("worker2")
    system.sandbox("POST", "/_sandbox/faults", json={"latency_s": 0.2})
    jobs = chunks(phones(61, sizes.recipients), sizes.per_job)
    try:
        for job in jobs[: len(jobs) // 2]:
            ledger.submit_sms(job)
        time.sleep(1.0)
        system.signal_group("worker2", signal.SIGSTOP)
        for job in jobs[len(jobs) // 2 :]:
            ledger.submit_sms(job)
        # Recovering what the frozen worker had reserved may take the visibility timeout (30 s).
        settled_frozen = ledger.wait_settled(
            sizes.settle_s + SENDING_TIMEOUT_S, quiet_s=0, stall_s=45
        )
        waiting = Counter(
            f"{status}: {error}"
            for status, error in ledger.statuses().values()
            if status not in SETTLED
        )
    finally:
        system.sandbox("POST", "/_sandbox/faults", json={"latency_s": 0.0})
        system.signal_group("worker2", signal.SIGCONT)
    settled = ledger.wait_settled(sizes.settle_s, quiet_s=8)
    system.children["worker2"].stop()
    row = record(ledger, settled=settled)
    if not settled_frozen:
        row.problems.append(f"{sum(waiting.values())} waited for the frozen worker")
        row.notes.append(f"waiting while frozen: {dict(waiting)}")
    verdict(row, system)
