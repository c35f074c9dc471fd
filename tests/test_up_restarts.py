"""Unit tests of `herald up`'s supervision (worker/up.py): a part that exits is started again,
later each time it keeps failing fast, with a line for each restart; real tiny processes, a
clock given by the test."""

from __future__ import annotations

import sys
from pathlib import Path

from worker.settings import Settings
from worker.up import HEALTHY_RUN_S, RESTART_MAX_S, LocalSystem, restart_delay_s

EXITS_AT_ONCE = [sys.executable, "-S", "-c", "raise SystemExit(3)"]


def test_the_wait_doubles_with_each_quick_exit_up_to_a_cap() -> None:
    waits = [restart_delay_s(n) for n in range(10)]

    assert waits[:4] == [1.0, 2.0, 4.0, 8.0]
    assert waits == sorted(waits)
    assert max(waits) == RESTART_MAX_S == restart_delay_s(10_000)


def test_a_part_that_exits_is_started_again_after_its_wait(tmp_path: Path) -> None:
    said: list[str] = []
    system = LocalSystem(Settings(data_dir=tmp_path), said.append)
    child = system.start("worker", EXITS_AT_ONCE)
    first = child.process
    first.wait()
    started = child.started_at

    system.supervise(started + 0.5)
    assert child.process is first
    assert said == [
        f"worker stopped (exit 3) after 0 s; starting it again in 2 s; see {child.log_path}"
    ]
    system.supervise(started + 2.0)
    assert child.process is first
    system.supervise(started + 2.6)

    assert child.process is not first
    assert child.restarts == 1
    assert said[-1] == "worker started again (restart 1)"
    child.process.wait()


def test_a_part_that_keeps_failing_fast_is_retried_ever_more_slowly(tmp_path: Path) -> None:
    said: list[str] = []
    system = LocalSystem(Settings(data_dir=tmp_path), said.append)
    child = system.start("beat", EXITS_AT_ONCE)
    now = child.started_at
    waits = []
    for _ in range(8):
        child.process.wait()
        system.supervise(now)
        assert child.restart_at is not None
        waits.append(child.restart_at - now)
        now = child.restart_at
        system.supervise(now)

    assert waits == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    assert child.restarts == 8
    child.process.wait()


def test_a_part_that_ran_a_while_is_started_again_quickly(tmp_path: Path) -> None:
    system = LocalSystem(Settings(data_dir=tmp_path), lambda _line: None)
    child = system.start("api", EXITS_AT_ONCE)
    child.quick_exits = 5
    child.process.wait()

    system.supervise(child.started_at + HEALTHY_RUN_S + 1)

    assert child.restart_at == child.started_at + HEALTHY_RUN_S + 1 + restart_delay_s(0)
