"""Figure (1): plain Celery no-op tasks per second, real worker processes on the same Redis.

The bench process sends N tasks of `bench.noop_app` while its worker consumes them; the rate is
N over the time from the first send until the worker has run the last one."""

from __future__ import annotations

import time
from pathlib import Path
from typing import cast

import redis as redis_py
from celery import Celery

from bench import noop_app
from bench.figures import Figure
from bench.stack import NOOP_DB, noop_worker
from bench.waiting import wait_for
from tests.support import RedisServer

KEY = "noop"


def measure_celery_noop(
    redis: RedisServer, folder: Path, *, tasks: int, concurrency: int, budget_s: float
) -> Figure:
    sender = Celery("bench_noop_sender", broker=redis.url(NOOP_DB))
    sender.conf.update(task_serializer="json", task_ignore_result=True)
    counter = redis_py.Redis.from_url(redis.url(NOOP_DB))

    def ran() -> int:
        return int(cast(bytes | None, counter.get(noop_app.COUNTER_KEY)) or 0)

    with noop_worker(redis, folder, concurrency=concurrency):
        counter.delete(noop_app.COUNTER_KEY)
        started = time.monotonic()
        with sender.connection_for_write() as connection:
            for _ in range(tasks):
                sender.send_task(noop_app.NOOP_TASK, connection=connection)
        finished = wait_for(lambda: ran() >= tasks, started=started, budget_s=budget_s)
        count = ran()
    return Figure.rate(
        KEY,
        "(1) plain Celery no-op tasks/s",
        count=count,
        of=tasks,
        seconds=(finished or time.monotonic()) - started,
        unit="tasks/s",
        complete=finished is not None,
        detail=f"{tasks:,} tasks, {concurrency} worker processes",
    )
