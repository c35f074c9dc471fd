"""Unit tests of the worker's liveness check (worker/liveness.py) with a fake clock: a worker
that stops consuming while Redis answers ends, one waiting for Redis does not."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pytest
from pydantic import ValidationError

from worker.liveness import Liveness, LivenessWatch, ProbeLogFilter
from worker.names import LIVENESS_TASK
from worker.settings import Settings

TIMEOUT_S = 60.0
INTERVAL_S = 10.0


@dataclass
class FakeWorker:
    """The world a watch sees: a clock, a broker that answers or not, running tasks, and a
    consumer that receives the probes it is sent (or has stopped doing so)."""

    now_s: float = 1000.0
    broker_up: bool = True
    consuming: bool = True
    tasks_running: bool = False
    probes_sent: int = 0
    ended: list[str] = field(default_factory=list)
    watch: LivenessWatch = field(init=False)

    def __post_init__(self) -> None:
        self.watch = LivenessWatch(
            liveness=Liveness(timeout_s=TIMEOUT_S, last_proof_s=self.now_s, stop_grace_s=200),
            interval_s=INTERVAL_S,
            broker_answers=lambda: self.broker_up,
            send_probe=self.send_probe,
            tasks_running=lambda: self.tasks_running,
            clock=lambda: self.now_s,
            end_process=self.ended.append,
        )

    def send_probe(self) -> None:
        if not self.broker_up:
            raise ConnectionError("broker gone")
        self.probes_sent += 1
        if self.consuming:
            self.watch.liveness.probe_received(self.now_s)

    def run_for(self, seconds: float) -> None:
        """Let the watch check every interval for `seconds`, stopping once the process ended."""
        end_s = self.now_s + seconds
        while self.now_s < end_s and not self.ended:
            self.now_s += INTERVAL_S
            self.watch.check()


def test_a_worker_that_consumes_its_probes_lives_on() -> None:
    worker = FakeWorker()

    worker.run_for(3600)

    assert worker.ended == []
    assert worker.probes_sent == 360


def test_a_worker_that_stops_consuming_while_redis_answers_ends_after_the_timeout() -> None:
    worker = FakeWorker()
    worker.run_for(100)
    worker.consuming = False
    stopped_at = worker.now_s

    worker.run_for(3600)

    assert len(worker.ended) == 1
    assert "no liveness probe was consumed" in worker.ended[0]
    assert TIMEOUT_S < worker.now_s - stopped_at <= TIMEOUT_S + INTERVAL_S


def test_a_worker_waiting_for_redis_lives_however_long_redis_is_away() -> None:
    worker = FakeWorker()
    worker.broker_up = False
    worker.consuming = False

    worker.run_for(3600)

    assert worker.ended == []


def test_after_redis_returns_a_worker_gets_the_whole_timeout_to_consume_again() -> None:
    worker = FakeWorker()
    worker.broker_up, worker.consuming = False, False
    worker.run_for(600)
    worker.broker_up = True
    back_at = worker.now_s

    worker.run_for(TIMEOUT_S)
    assert worker.ended == []
    worker.run_for(3600)

    assert len(worker.ended) == 1
    assert worker.now_s - back_at > TIMEOUT_S


def test_a_worker_that_resumes_consuming_in_time_lives_on() -> None:
    worker = FakeWorker()
    worker.consuming = False
    worker.run_for(TIMEOUT_S - INTERVAL_S)
    worker.consuming = True

    worker.run_for(3600)

    assert worker.ended == []


def test_a_probe_that_cannot_be_sent_is_no_reason_to_end() -> None:
    worker = FakeWorker()
    worker.consuming = False

    def refuse() -> None:
        raise OSError("publish refused")

    worker.watch.send_probe = refuse
    worker.run_for(3600)

    assert worker.ended == []


def test_a_silent_worker_with_a_task_running_ends_only_once_it_finished() -> None:
    worker = FakeWorker()
    worker.consuming = False
    worker.tasks_running = True

    worker.run_for(TIMEOUT_S + 3 * INTERVAL_S)
    assert worker.ended == []
    worker.tasks_running = False
    worker.run_for(INTERVAL_S)

    assert len(worker.ended) == 1


def test_a_task_that_never_ends_does_not_keep_a_silent_worker_alive() -> None:
    worker = FakeWorker()
    worker.consuming = False
    worker.tasks_running = True

    worker.run_for(3600)

    assert len(worker.ended) == 1
    assert worker.now_s - 1000.0 <= 2 * TIMEOUT_S + 2 * INTERVAL_S


def test_a_stop_that_hangs_ends_the_process_after_the_grace() -> None:
    worker = FakeWorker()
    worker.watch.liveness.stopping(worker.now_s)
    worker.consuming = False
    worker.broker_up = False

    worker.run_for(190)
    assert worker.ended == []
    worker.run_for(3600)

    assert len(worker.ended) == 1
    assert "asked to stop" in worker.ended[0]
    assert worker.probes_sent == 0


def test_probe_log_lines_are_dropped_and_others_kept() -> None:
    def record(name: str) -> logging.LogRecord:
        context = {"id": "x", "name": name, "runtime": 0.1, "return_value": "alive"}
        return logging.LogRecord(
            "celery.app.trace", logging.INFO, __file__, 1, "Task %(name)s[%(id)s]", (context,), None
        )

    keep = ProbeLogFilter()

    assert not keep.filter(record(LIVENESS_TASK))
    assert keep.filter(record("herald.send_job"))


def test_a_liveness_timeout_shorter_than_a_task_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_LIVENESS_TIMEOUT_S", "100")

    with pytest.raises(ValidationError, match="HERALD_LIVENESS_TIMEOUT_S"):
        Settings()


def test_zero_disables_the_liveness_check_whatever_the_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HERALD_LIVENESS_INTERVAL_S", "0")
    monkeypatch.setenv("HERALD_LIVENESS_TIMEOUT_S", "1")

    assert Settings().liveness_interval_s == 0
