"""The Celery app, configured for a delivery system on a Redis broker.

Why each setting (more in docs/design.md, "Celery settings", and Celery's configuration reference):
- late acks + reject on worker lost: a task whose worker dies is delivered again, and the store's
  atomic claim makes the second run harmless;
- one visibility timeout, set in every place Celery reads it (celery#7651), longer than any task
  may run; no task is ever given a countdown or ETA (waits live in the store as `not_before` and
  the workers release them: worker/due_release.py), so none can outlive it;
- prefetch 1: a worker holds no more unacked sends than it runs;
- JSON only, and task arguments are job ids: no phone number or content reaches the broker,
  Flower or the logs; task events (what Flower shows) and the worker's and beat's logs are
  redacted besides (worker/task_events.py, worker/log_redaction.py), and with HERALD_LOG_JSON
  one JSON object a line (worker/log_format.py);
- a broker outage does not cancel running tasks
  (`worker_cancel_long_running_tasks_on_connection_loss=False`): a send in the middle of its
  vendor call finishes and records the outcome in the store, which does not need Redis. Its late
  ack may then fail on the dead connection, and Redis (when it kept the message) hands the task
  out again after the visibility timeout; that second run finds nothing left to claim, since the
  store's claim is a conditional UPDATE (docs/design.md, promise 2). Cancelling instead left
  rows in `sending`, which the sweeper can only call `unknown`;
- where Celery itself cannot recover from a broker outage (it stays alive without consuming:
  celery/celery#8030, #8091, #9054, #8990), `worker.liveness` makes the worker exit so that its
  supervisor starts a new one; it probes through this worker's own queue (`worker_direct`);
- times are stored and sent in UTC (`enable_utc`), and shown in Asia/Shanghai (`timezone`: the
  logs' and Flower's times), the zone the operators and the vendors read. The beat schedule is
  made of intervals only, so no entry depends on the zone.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    celeryd_init,
    worker_init,
    worker_process_shutdown,
    worker_ready,
)
from kombu.entity import Queue

from worker import log_format, log_redaction, metrics
from worker.due_release import DueReleaseStep
from worker.liveness import LivenessStep, probe, quiet_probe_logs
from worker.names import (
    APPLY_PUSH_TASK,
    APPLY_PUSHES_TASK,
    LIVENESS_TASK,
    POLL_BALANCES_TASK,
    POLL_FIVEC_REPORTS_TASK,
    RELEASE_DUE_TASK,
    SEND_JOB_TASK,
    SWEEP_TASK,
)
from worker.redis_urls import is_sentinel_url
from worker.settings import get_settings
from worker.webhooks import WebhookStep

SEND_QUEUE = "send"
MAINTENANCE_QUEUE = "maintenance"
PUSHES_QUEUE = "pushes"
QUEUES = (SEND_QUEUE, MAINTENANCE_QUEUE, PUSHES_QUEUE)
"""Every queue a worker started without -Q consumes (with its own, for liveness probes)."""
TASK_MODULES = [
    "tasks.send",
    "tasks.pushes",
    "tasks.push_drain",
    "tasks.reports",
    "tasks.maintenance",
    "tasks.balances",
    "schedules",
]
"""Imported by name by workers and beat; `schedules` sets the beat schedule when imported."""


BEAT_MAX_SLEEP_S = 5
"""Beat wakes at least this often, and writes its heartbeat each time (worker/health.py)."""


def make_celery() -> Celery:
    settings = get_settings()
    celery = Celery("herald", include=TASK_MODULES, events="worker.task_events:RedactedEvents")
    transport_options: dict[str, object] = {
        "visibility_timeout": settings.visibility_timeout_s,
        "socket_keepalive": True,
        "health_check_interval": 25,
        "socket_timeout": 30,
        "socket_connect_timeout": 5,
    }
    if is_sentinel_url(settings.redis_url):
        transport_options["master_name"] = settings.redis_sentinel_master
    celery.conf.update(
        broker_url=settings.redis_url,
        broker_transport_options=transport_options,
        result_backend_transport_options=transport_options,
        visibility_timeout=settings.visibility_timeout_s,
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        task_time_limit=settings.task_time_limit_s,
        task_soft_time_limit=settings.soft_time_limit_s,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_direct=True,
        worker_soft_shutdown_timeout=30,
        worker_enable_soft_shutdown_on_idle=True,
        worker_send_task_events=True,
        task_send_sent_event=True,
        worker_max_tasks_per_child=1000,
        worker_hijack_root_logger=False,
        task_default_queue=SEND_QUEUE,
        task_queues=[Queue(name) for name in QUEUES],
        task_routes={
            SEND_JOB_TASK: {"queue": SEND_QUEUE},
            RELEASE_DUE_TASK: {"queue": MAINTENANCE_QUEUE},
            SWEEP_TASK: {"queue": MAINTENANCE_QUEUE},
            APPLY_PUSH_TASK: {"queue": PUSHES_QUEUE},  # never ahead of beat's tasks in one queue
            APPLY_PUSHES_TASK: {"queue": PUSHES_QUEUE},
            POLL_BALANCES_TASK: {"queue": MAINTENANCE_QUEUE},
            POLL_FIVEC_REPORTS_TASK: {"queue": MAINTENANCE_QUEUE},
            LIVENESS_TASK: {"queue": MAINTENANCE_QUEUE},  # sent to the worker's own queue
        },
        beat_scheduler="worker.health:HeartbeatBeat",
        beat_max_loop_interval=BEAT_MAX_SLEEP_S,
        enable_utc=True,
        timezone="Asia/Shanghai",
    )
    celery.task(name=LIVENESS_TASK, ignore_result=True, send_events=False, acks_late=False)(probe)
    celery.steps["worker"].add(LivenessStep)
    celery.steps["worker"].add(DueReleaseStep)
    celery.steps["worker"].add(WebhookStep)
    quiet_probe_logs()
    return celery


@after_setup_logger.connect
@after_setup_task_logger.connect
def redact_logs(logger: logging.Logger, **_kwargs: Any) -> None:
    """Worker and beat: no secret and no whole phone number in what Celery's handlers write;
    one JSON object a line with HERALD_LOG_JSON (worker/log_format.py)."""
    log_redaction.install(logger.name)
    log_format.install(logger.name, MULTIPROCESSING_LOGGER)


MULTIPROCESSING_LOGGER = "multiprocessing"
"""The pool's own logger, which Celery gives a handler of its own beside the root's."""


@celeryd_init.connect
def no_banner_in_json_logs(instance: Any, **_kwargs: Any) -> None:
    """With JSON logs the worker prints no plain-text banner (as `celery --quiet`), and what is
    logged before Celery sets up its logging (its warning about running as root) is JSON too,
    so that every line it writes is JSON. Beat prints its banner before any signal: give it
    `celery --quiet`."""
    if log_format.json_logs_enabled():
        instance.quiet = True
        log_format.install()


@worker_init.connect
def share_worker_metrics(**_kwargs: Any) -> None:
    """Before the pool starts: its processes write their metrics where `/metrics` reads them
    (worker/metrics.py)."""
    metrics.enable_multiprocess(get_settings())


@worker_process_shutdown.connect
def forget_pool_process(pid: int | None = None, **_kwargs: Any) -> None:
    if pid is not None:
        metrics.process_ended(pid)


@worker_ready.connect
def read_balances_at_start(**_kwargs: Any) -> None:
    """Balances are known from the start, not only after beat's first interval; the poll runs
    once per interval across the fleet, so a worker that starts soon after another reads none."""
    try:
        app.send_task(POLL_BALANCES_TASK)
    except Exception:  # kombu raises several unrelated types for an unreachable broker
        logging.getLogger(__name__).warning("could not ask for the balances", exc_info=True)


app = make_celery()
