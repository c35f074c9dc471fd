"""The doorbell that wakes the push applier, without a Celery task per push.

The API commits each push, then rings: `SET herald:once:apply-pushes NX PX <hold>` in Redis, and
only the request that set the key sends one `herald.apply_pushes` task. That task applies the
stored pushes in batches until none is left (tasks/push_drain.py), so every push stored while
the key is held rides on it; after the hold the next push rings again, which also starts a
second applier when one is not enough. When the applier finds nothing left it opens the door
(deletes the key) and looks once more, so a push committed just before the door opened is never
left waiting: either its own ring got through, or that last look finds it.

Nothing here may fail a push: it is stored already. A Redis or broker outage is logged (once
until the bell works again) and the push waits for beat's sweep, which applies what is stored.
"""

from __future__ import annotations

import logging
import threading
from functools import cache

import redis

from worker.names import APPLY_PUSHES_TASK, PUSH_DOORBELL_KEY
from worker.redis_client import redis_from_url
from worker.settings import get_settings

log = logging.getLogger(__name__)

DOORBELL_HOLD_MS = 200
"""How long one ring stands for every push stored after it: at most 1000 / DOORBELL_HOLD_MS
tasks a second are sent, whatever the rate of pushes."""
REDIS_TIMEOUT_S = 1.0
"""A Redis that does not answer within this holds a push's answer no longer (the push is
stored; the sweep applies it)."""


@cache
def doorbell_redis() -> redis.Redis:
    """The limits' Redis (`worker.redis_client`), with short timeouts: a Redis that hangs must
    not hold the vendor's push open."""
    settings = get_settings()
    return redis_from_url(
        settings.limits_redis_url or settings.redis_url,
        socket_timeout=REDIS_TIMEOUT_S,
        socket_connect_timeout=REDIS_TIMEOUT_S,
    )


class Doorbell:
    """Rings for the applier; remembers whether the last ring failed, to log an outage once."""

    def __init__(self) -> None:
        self.failing = False
        self.lock = threading.Lock()

    def ring(self) -> bool:
        """Send an applier unless a recent ring did; whether a task was sent."""
        try:
            if not doorbell_redis().set(PUSH_DOORBELL_KEY, "1", nx=True, px=DOORBELL_HOLD_MS):
                self.working()
                return False
        except redis.RedisError as exc:
            self.failed(f"Redis: {type(exc).__name__}")
            return False
        try:
            send_applier()
        except Exception as exc:  # kombu raises several unrelated types for a broker outage
            self.failed(f"broker: {type(exc).__name__}")
            open_door()  # the next push rings again rather than trusting a task never sent
            return False
        self.working()
        return True

    def failed(self, why: str) -> None:
        with self.lock:
            first, self.failing = not self.failing, True
        if first:
            log.warning("cannot wake the push applier (%s); beat's sweep applies the pushes", why)

    def working(self) -> None:
        with self.lock:
            was_failing, self.failing = self.failing, False
        if was_failing:
            log.info("waking the push applier again")


def send_applier() -> None:
    from worker.app import app

    app.send_task(APPLY_PUSHES_TASK)


def open_door() -> None:
    """Let the next stored push ring again (the applier found nothing left)."""
    try:
        doorbell_redis().delete(PUSH_DOORBELL_KEY)
    except redis.RedisError as exc:  # the key expires by itself within the hold
        log.debug("could not open the push doorbell: %s", exc)


doorbell = Doorbell()
"""This process's doorbell."""
