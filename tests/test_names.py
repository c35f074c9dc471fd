"""Unit tests: every Celery task is named in worker/names.py, and nothing names a task that is
not registered (a misspelt name in `send_task` or the beat schedule fails silently otherwise)."""

from __future__ import annotations

import importlib

from worker import names
from worker.app import TASK_MODULES, app


def registered_tasks() -> set[str]:
    for module in TASK_MODULES:
        importlib.import_module(module)
    return {name for name in app.tasks if not name.startswith("celery.")}


def task_names() -> set[str]:
    return {value for key, value in vars(names).items() if key.endswith("_TASK")}


def test_every_registered_task_is_named_in_names_and_every_name_is_registered() -> None:
    assert registered_tasks() == task_names()


def test_the_beat_schedule_names_only_registered_tasks() -> None:
    registered = registered_tasks()  # importing `schedules` sets the schedule
    scheduled = {entry["task"] for entry in app.conf.beat_schedule.values()}

    assert scheduled
    assert scheduled <= registered


def test_every_registered_task_is_routed_to_a_queue() -> None:
    assert set(app.conf.task_routes) == registered_tasks()


def test_the_redis_keys_all_start_with_herald() -> None:
    keys = {value for key, value in vars(names).items() if key.endswith(("_KEY", "_KEY_PREFIX"))}

    assert keys
    assert all(key.startswith("herald:") for key in keys)
