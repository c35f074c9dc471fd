"""Integration: with HERALD_LOG_JSON=1 the worker and the API write one JSON object a line,
with the job id where a log call has one, and no whole phone number."""

from __future__ import annotations

import json
from typing import Any

import pytest
from celery import Celery

from tests.integration.conftest import System
from tests.support import wait_until
from worker.names import SEND_JOB_TASK

pytestmark = pytest.mark.integration

SYSTEM_ENV = {"HERALD_LOG_JSON": "true"}
PHONE = "13712340001"
MISSING_JOB = "0" * 31 + "1"


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of a log, each parsed (a line that is not a JSON object fails the test)."""
    parsed = []
    for line in text.splitlines():
        if line.strip():
            value = json.loads(line)
            assert isinstance(value, dict), line
            parsed.append(value)
    return parsed


def test_the_worker_and_the_api_write_json_lines_with_the_job_id(system: System) -> None:
    job_id = system.send_sms([PHONE])
    system.wait_settled([job_id], timeout_s=30)
    broker = Celery(broker=system.env["HERALD_REDIS_URL"])
    broker.send_task(SEND_JOB_TASK, args=[MISSING_JOB], queue="send")

    def logged_missing_job() -> bool:
        worker = json_lines(system.children["worker"].log())
        return any(line.get("job_id") == MISSING_JOB for line in worker)

    wait_until(logged_missing_job, timeout_s=20, what="the worker to log the missing job")
    worker = json_lines(system.children["worker"].log())
    api = json_lines(system.children["api"].log())
    (missing,) = [line for line in worker if line.get("job_id") == MISSING_JOB]
    assert missing["level"] == "ERROR" and missing["logger"] == "tasks.send"
    assert missing["message"] == f"send_job: no job {MISSING_JOB} in the store"
    assert missing["time"].endswith("+08:00")
    assert all({"time", "level", "logger", "message"} <= set(line) for line in worker + api)
    assert any("herald.send_job" in line["message"] for line in worker)
    assert any(f"/v1/messages/{job_id}" in line["message"] for line in api)
    assert PHONE not in system.children["worker"].log() + system.children["api"].log()
