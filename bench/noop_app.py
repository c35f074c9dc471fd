"""The plain-Celery yardstick: a Celery app with one task that only counts itself, on the same
Redis as herald (its own database), with Celery's defaults but JSON and no results, as a new
user would write it. Its worker: `celery -A bench.noop_app worker` (bench/stack.py)."""

from __future__ import annotations

import os
from functools import cache

import redis
from celery import Celery

NOOP_TASK = "bench.noop"
COUNTER_KEY = "bench:noop:done"

app = Celery("bench_noop", broker=os.environ.get("BENCH_NOOP_BROKER", "redis://127.0.0.1:6379/1"))
app.conf.update(task_serializer="json", accept_content=["json"], task_ignore_result=True)


@cache
def counter() -> redis.Redis:
    return redis.Redis.from_url(app.conf.broker_url)


@app.task(name=NOOP_TASK)
def noop() -> None:
    """Nothing but a count, so the bench can see when every task has run."""
    counter().incr(COUNTER_KEY)
