"""A worker that no longer consumes exits, so that its supervisor starts a new one.

After a broker outage Celery sometimes cannot recover on its own: the worker logs `CRITICAL ...
Unrecoverable error` and stays alive doing nothing, or reconnects and never consumes again
(celery/celery#8030, #8091, #9054, #8990; docs/design.md, "Celery settings"). No supervisor
restarts a process that is alive, so the worker proves to itself that it still consumes:

- every `HERALD_LIVENESS_INTERVAL_S` a thread of the worker's main process sends a tiny probe
  task (`herald.liveness`) to this worker's own queue (Celery's `worker_direct` queue, named
  after its hostname), and notes the probe messages the worker receives;
- when no probe has been received for `HERALD_LIVENESS_TIMEOUT_S` while Redis answers, it logs a
  CRITICAL line and ends the process (`os._exit`), once no task is running, so compose's
  `restart: unless-stopped` or `herald up` starts a new one. While Redis does not answer nothing
  can be expected, so the time only counts once it answers again;
- each probe received also refreshes the worker's heartbeat key in Redis, which `/readyz` and
  `herald health` read (worker/health.py);
- a worker asked to stop that is still alive long after any task and the soft shutdown could
  have ended is ended the same way (Celery's own stop can hang after an unrecoverable error).

The timeout must exceed the task time limit: with every pool process busy on the longest task
the probe waits for a free one. Probes carry no arguments, send no task events (Flower does not
list them) and their "received"/"succeeded" log lines are dropped, so a probe every 15 s costs
one tiny message and nothing in Flower or the logs. `0` for either setting disables the check.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
from celery import Celery, bootsteps
from celery.signals import task_received
from celery.utils import uuid
from celery.utils.nodenames import worker_direct

from worker.names import LIVENESS_TASK
from worker.redis_client import redis_answers
from worker.settings import Settings, get_settings

log = logging.getLogger(__name__)

EXIT_CODE = 75
"""EX_TEMPFAIL: a temporary failure; starting the worker again is the remedy."""
BROKER_TIMEOUT_S = 2.0


def probe() -> str:
    """The probe's body: being received is the proof; running it proves the pool runs."""
    return "alive"


@dataclass
class Liveness:
    """When the worker last proved that it consumes, and whether that is too long ago.

    Times are monotonic seconds, given by the caller, so the rules can be tested with a fake
    clock.
    """

    timeout_s: float
    last_proof_s: float
    stop_grace_s: float
    stopping_since_s: float | None = None
    active_since_s: float | None = field(default=None, repr=False)

    def probe_received(self, now_s: float) -> None:
        self.last_proof_s = max(self.last_proof_s, now_s)

    def broker_unreachable(self, now_s: float) -> None:
        """Nothing can be consumed from a broker that is away: the wait starts again when it
        answers."""
        self.last_proof_s = max(self.last_proof_s, now_s)

    def stopping(self, now_s: float) -> None:
        if self.stopping_since_s is None:
            self.stopping_since_s = now_s

    def verdict(self, now_s: float, *, tasks_running: bool) -> str | None:
        """Why the process must end now, or None while it may live.

        A worker that stopped consuming ends only once no task is running (a running vendor call
        must finish and record its outcome), or when tasks have run a whole further timeout
        without a probe getting through (they are stuck as well).
        """
        if self.stopping_since_s is not None:
            stuck_s = now_s - self.stopping_since_s
            if stuck_s > self.stop_grace_s:
                return f"the worker was asked to stop {stuck_s:.0f} s ago and is still alive"
            return None
        silent_s = now_s - self.last_proof_s
        if silent_s <= self.timeout_s:
            self.active_since_s = None
            return None
        if tasks_running:
            if self.active_since_s is None:
                self.active_since_s = now_s
            if now_s - self.active_since_s <= self.timeout_s:
                return None
        return (
            f"no liveness probe was consumed in the last {silent_s:.0f} s although the broker "
            f"answers (limit {self.timeout_s:g} s): the worker no longer consumes"
        )


@dataclass
class LivenessWatch:
    """One check every interval, on a daemon thread of the worker's main process."""

    liveness: Liveness
    interval_s: float
    broker_answers: Callable[[], bool]
    send_probe: Callable[[], None]
    tasks_running: Callable[[], bool]
    clock: Callable[[], float] = time.monotonic
    end_process: Callable[[str], None] = field(default=lambda reason: exit_now(reason))

    def check(self) -> None:
        now_s = self.clock()
        if self.liveness.stopping_since_s is None:
            if not self.broker_answers():
                self.liveness.broker_unreachable(now_s)
                return
            try:
                self.send_probe()
            except Exception as exc:  # kombu raises several unrelated types for a broker fault
                log.warning("could not send the liveness probe: %r", exc)
                self.liveness.broker_unreachable(now_s)
                return
        reason = self.liveness.verdict(now_s, tasks_running=self.tasks_running())
        if reason is not None:
            self.end_process(reason)

    def run(self) -> None:
        """Check forever; the thread is a daemon, so it ends with the process."""
        while True:
            time.sleep(self.interval_s)
            try:
                self.check()
            except Exception:
                log.exception("liveness check failed; trying again")

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="herald-liveness", daemon=True)
        thread.start()
        return thread


def exit_now(reason: str) -> None:
    log.critical(
        "%s; exiting (code %d) so that the supervisor starts a new worker", reason, EXIT_CODE
    )
    logging.shutdown()
    os._exit(EXIT_CODE)


def broker_answers(url: str) -> bool:
    return redis_answers(url, connect_timeout_s=BROKER_TIMEOUT_S, timeout_s=BROKER_TIMEOUT_S)


def send_probe(app: Celery, hostname: str, expires_s: float) -> None:
    """Put one probe on this worker's own queue, on a connection of its own, without a
    task-sent event (Flower would list every probe as a pending task)."""
    queue = worker_direct(hostname)
    message = app.amqp.create_task_message(
        uuid(),
        LIVENESS_TASK,
        (),
        {},
        expires=expires_s,
        create_sent_event=False,
        ignore_result=True,
    )
    with app.connection_for_write() as connection:
        producer = app.amqp.Producer(connection, auto_declare=False)
        app.amqp.send_task_message(
            producer,
            LIVENESS_TASK,
            message,
            queue=queue,
            exchange=queue.exchange.name,
            routing_key=queue.routing_key,
            retry=False,
        )


def liveness_enabled(settings: Settings) -> bool:
    return settings.liveness_interval_s > 0 and settings.liveness_timeout_s > 0


class LivenessStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """The worker bootstep that runs a `LivenessWatch` in the worker's main process."""

    requires = ("celery.worker.components:Pool",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.watch: LivenessWatch | None = None

    def start(self, parent: Any) -> None:
        settings = get_settings()
        if not liveness_enabled(settings):
            log.info("liveness check disabled")
            return
        from celery.worker.state import active_requests

        app, hostname = parent.app, parent.hostname
        now_s = time.monotonic()
        watch = LivenessWatch(
            liveness=Liveness(
                timeout_s=settings.liveness_timeout_s,
                last_proof_s=now_s,
                stop_grace_s=stop_grace_s(settings, app),
            ),
            interval_s=settings.liveness_interval_s,
            broker_answers=lambda: broker_answers(app.conf.broker_url),
            send_probe=lambda: send_probe(app, hostname, settings.liveness_timeout_s),
            tasks_running=lambda: any(r.name != LIVENESS_TASK for r in tuple(active_requests)),
        )

        def received(sender: Any = None, request: Any = None, **_: Any) -> None:
            if getattr(request, "name", None) == LIVENESS_TASK:
                watch.liveness.probe_received(time.monotonic())
                beat_heart(hostname, settings)

        task_received.connect(received, weak=False)
        self.watch = watch
        beat_heart(hostname, settings)
        watch.start()
        log.info(
            "liveness check: a probe every %g s to %s; exit after %g s without one",
            settings.liveness_interval_s,
            worker_direct(hostname).name,
            settings.liveness_timeout_s,
        )

    def stop(self, parent: Any) -> None:
        """Celery is stopping the worker: the watch now only guards against a stop that
        hangs."""
        if self.watch is not None:
            self.watch.liveness.stopping(time.monotonic())

    def terminate(self, parent: Any) -> None:
        self.stop(parent)


def beat_heart(hostname: str, settings: Settings) -> None:
    """This worker consumes: its heartbeat key says so to `/readyz` (worker/health.py) until it
    expires."""
    from worker.health import heartbeat_client, worker_heartbeat_key, write_heartbeat

    ttl_s = max(settings.ready_worker_s, settings.liveness_interval_s * 2)
    try:
        write_heartbeat(heartbeat_client(), worker_heartbeat_key(hostname), ttl_s)
    except redis.RedisError as exc:
        log.warning("could not write the worker's heartbeat: %r", exc)


def stop_grace_s(settings: Settings, app: Celery) -> float:
    """Longest a healthy stop takes: the soft shutdown, then the longest task, and a margin."""
    soft_s = float(app.conf.worker_soft_shutdown_timeout or 0)
    return soft_s + settings.task_time_limit_s + max(30.0, settings.liveness_interval_s)


class ProbeLogFilter(logging.Filter):
    """Drops Celery's "received" and "succeeded" lines of liveness probes."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        return not (isinstance(args, dict) and args.get("name") == LIVENESS_TASK)


PROBE_LOGGERS = ("celery.worker.strategy", "celery.app.trace")


def quiet_probe_logs() -> None:
    for name in PROBE_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, ProbeLogFilter) for f in logger.filters):
            logger.addFilter(ProbeLogFilter())
