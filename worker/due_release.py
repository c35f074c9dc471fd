"""Releasing due recipients without a Celery task per tick.

Scheduled and deferred recipients wait in the store with a `not_before` time (no Celery
countdowns: docs/design.md). Every HERALD_RELEASE_INTERVAL_S a thread of each worker's main
process moves the ones whose time has come to `queued` and enqueues their jobs' `send_job`
tasks. A Redis key set for one interval makes the fleet do this once per interval, whatever the
number of workers, and the store's conditional UPDATE makes an overlap harmless. Flower then
shows only the `send_job` tasks of jobs that fell due, instead of a release task every couple
of seconds; beat's `herald.release_due` still runs every HERALD_RELEASE_SAFETY_NET_S, for a
fleet whose workers are all busy or were started without this step.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis
from celery import bootsteps

from worker.errors import StoreUnavailable
from worker.names import RELEASE_DUE_LOCK_KEY
from worker.producer import enqueue_send
from worker.redis_client import redis_client
from worker.settings import get_settings
from worker.store import release_due, session_scope, utcnow

log = logging.getLogger(__name__)


def release_due_now() -> int:
    """Move what is due to `queued` and enqueue its jobs; how many jobs."""
    with session_scope() as session:
        job_ids = release_due(session, now=utcnow())
    for job_id in job_ids:
        enqueue_send(job_id)
    return len(job_ids)


def our_turn(interval_s: float) -> bool:
    """Whether this worker releases in this interval (the first to ask does)."""
    ttl_ms = max(1, int(interval_s * 1000 * 0.9))
    return bool(redis_client().set(RELEASE_DUE_LOCK_KEY, "1", nx=True, px=ttl_ms))


class DueReleaseLoop:
    """One release per interval on a daemon thread; outages are logged once, not every tick."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.failing = False

    def tick(self) -> None:
        try:
            if our_turn(self.interval_s):
                released = release_due_now()
                if released:
                    log.info("released %d due jobs", released)
        except (StoreUnavailable, redis.RedisError) as exc:
            if not self.failing:
                log.warning("cannot release due recipients now (%s); trying again", exc)
            self.failing = True
            return
        if self.failing:
            log.info("releasing due recipients again")
        self.failing = False

    def run(self) -> None:
        while True:
            time.sleep(self.interval_s)
            try:
                self.tick()
            except Exception:
                log.exception("releasing due recipients failed; trying again")

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="herald-due-release", daemon=True)
        thread.start()
        return thread


class DueReleaseStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """The worker bootstep that runs a `DueReleaseLoop` in the worker's main process."""

    requires = ("celery.worker.components:Pool",)

    def start(self, parent: Any) -> None:
        interval_s = get_settings().release_interval_s
        DueReleaseLoop(interval_s).start()
        log.info("releasing due recipients every %g s", interval_s)
