"""Unit tests of the queues: beat's housekeeping never waits behind a flood of receipts, and a
worker started without -Q (compose, `herald up`, the integration tests) consumes every queue."""

from __future__ import annotations

import importlib

from worker.app import QUEUES, TASK_MODULES, app
from worker.names import APPLY_PUSH_TASK


def queue_of(task: str) -> str:
    for module in TASK_MODULES:
        importlib.import_module(module)
    route = app.amqp.router.route({}, task)
    return str(route["queue"].name)


def test_pushes_have_a_queue_that_no_beat_task_shares() -> None:
    importlib.import_module("schedules")
    beat_tasks = {entry["task"] for entry in app.conf.beat_schedule.values()}

    assert beat_tasks
    assert queue_of(APPLY_PUSH_TASK) not in {queue_of(task) for task in beat_tasks}


def test_a_worker_without_queue_options_consumes_every_queue_a_task_is_routed_to() -> None:
    routed = {queue_of(task) for task in app.conf.task_routes}
    declared = set(app.amqp.queues)

    assert routed <= declared
    assert declared == set(QUEUES)
