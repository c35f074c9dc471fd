"""Readiness: whether the whole system can deliver now, for `/readyz` and `herald health`.

Four checks, each named in the answer: the store answers `SELECT 1`; Redis answers `PING`; a
worker consumed its liveness probe within HERALD_READY_WORKER_S (each worker writes a heartbeat
key, by hostname, when it receives one: `worker.liveness`); beat ticked within
HERALD_READY_BEAT_S (beat's scheduler writes its heartbeat key on every tick: `HeartbeatBeat`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

import redis
from celery.beat import PersistentScheduler

from worker.names import BEAT_HEARTBEAT_KEY, WORKER_HEARTBEAT_KEY_PREFIX
from worker.redis_client import redis_from_url
from worker.settings import Settings, get_settings
from worker.store.db import store_answers

log = logging.getLogger(__name__)
REDIS_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def health_redis(settings: Settings) -> redis.Redis:
    """A client that gives up quickly: a health check must answer while Redis does not."""
    return redis_from_url(
        settings.limits_redis_url or settings.redis_url,
        socket_connect_timeout=REDIS_TIMEOUT_S,
        socket_timeout=REDIS_TIMEOUT_S,
    )


def worker_heartbeat_key(hostname: str) -> str:
    return f"{WORKER_HEARTBEAT_KEY_PREFIX}:{hostname}"


def write_heartbeat(client: redis.Redis, key: str, ttl_s: float) -> None:
    client.set(key, f"{time.time():.3f}", px=max(1, int(ttl_s * 1000)))


def heartbeat_age_s(value: bytes | str | None, now_s: float) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, now_s - float(value))
    except ValueError:
        return None


def check_store() -> Check:
    ok = store_answers()
    return Check("store", ok, "answers" if ok else "does not answer")


def check_heartbeats(client: redis.Redis, settings: Settings) -> list[Check]:
    now_s = time.time()
    worker_keys = list(client.scan_iter(match=f"{WORKER_HEARTBEAT_KEY_PREFIX}:*", count=100))
    ages = [heartbeat_age_s(v, now_s) for v in client.mget(worker_keys)] if worker_keys else []
    fresh = [a for a in ages if a is not None and a <= settings.ready_worker_s]
    if fresh:
        worker = Check("worker", True, f"{len(fresh)} consumed within {min(fresh):.0f} s")
    else:
        worker = Check("worker", False, f"none consumed in the last {settings.ready_worker_s:g} s")
    beat_age = heartbeat_age_s(client.get(BEAT_HEARTBEAT_KEY), now_s)
    if beat_age is not None and beat_age <= settings.ready_beat_s:
        beat = Check("beat", True, f"ticked {beat_age:.0f} s ago")
    else:
        beat = Check("beat", False, f"no tick in the last {settings.ready_beat_s:g} s")
    return [worker, beat]


def readiness(settings: Settings | None = None) -> list[Check]:
    settings = settings or get_settings()
    checks = [check_store()]
    client = health_redis(settings)
    try:
        client.ping()
    except redis.RedisError:
        checks.append(Check("redis", False, "does not answer"))
        unknown = "unknown: Redis does not answer"
        checks += [Check("worker", False, unknown), Check("beat", False, unknown)]
        return checks
    else:
        checks.append(Check("redis", True, "answers"))
        try:
            checks += check_heartbeats(client, settings)
        except redis.RedisError:
            unknown = "unknown: Redis stopped answering"
            checks += [Check("worker", False, unknown), Check("beat", False, unknown)]
        return checks
    finally:
        client.close()


def as_json(checks: list[Check]) -> dict[str, Any]:
    ready = all(c.ok for c in checks)
    return {
        "status": "ready" if ready else "unready",
        "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks},
    }


class HeartbeatBeat(PersistentScheduler):  # type: ignore[misc]
    """Celery's default scheduler, which also writes beat's heartbeat key on every tick."""

    heartbeat_failing = False

    def tick(self, *args: Any, **kwargs: Any) -> float:
        try:
            ttl_s = max(get_settings().ready_beat_s, 1.0)
            write_heartbeat(heartbeat_client(), BEAT_HEARTBEAT_KEY, ttl_s)
            self.heartbeat_failing = False
        except redis.RedisError as exc:
            if not self.heartbeat_failing:  # once per outage, not every tick
                log.warning("could not write beat's heartbeat: %r", exc)
            self.heartbeat_failing = True
        return float(super().tick(*args, **kwargs))


@cache
def heartbeat_client() -> redis.Redis:
    return health_redis(get_settings())
