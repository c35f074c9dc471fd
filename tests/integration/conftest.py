"""The whole system as child processes: sandbox, API, Celery worker and beat.

Each test module gets its own store (SQLite file), its own Redis database on the test run's
private redis-server, and its own sandbox; a test may kill and restart the worker.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy.engine import Engine

from tests.conftest import CALLBACK_TOKEN, REDIS
from tests.support import PYTHON, Child, free_port, start_child, wait_http, wait_until
from worker.store import make_engine

REDIS_DATABASES = itertools.count(1)
FINAL_OR_SETTLED = {"delivered", "undelivered", "failed", "cancelled", "unknown"}


@dataclass
class System:
    folder: Path
    env: dict[str, str]
    api_url: str
    sandbox_url: str
    children: dict[str, Child] = field(default_factory=dict)

    def start(self, name: str, argv: list[str]) -> Child:
        child = start_child(name, argv, self.env, self.folder / "logs")
        self.children[name] = child
        return child

    def start_worker(self, concurrency: int = 2) -> Child:
        return self.start(
            "worker",
            [
                PYTHON,
                "-m",
                "celery",
                "-A",
                "worker",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                str(concurrency),
                "--hostname",
                f"test{time.monotonic_ns()}@%h",
            ],
        )

    def start_flower(self, port: int, basic_auth: str) -> Child:
        """Flower with basic auth (given in its environment, as `herald up` does)."""
        child = start_child(
            "flower",
            [
                PYTHON,
                "-m",
                "celery",
                "-A",
                "worker",
                "flower",
                "--address=127.0.0.1",
                f"--port={port}",
                "--max_tasks=10000",
            ],
            {**self.env, "FLOWER_BASIC_AUTH": basic_auth},
            self.folder / "logs",
        )
        self.children["flower"] = child
        return child

    def stop_all(self) -> None:
        for child in reversed(list(self.children.values())):
            child.stop()

    # --- talking to it ---

    def send_sms(self, to: list[str], content: str = "【Herald】您好", **extra: Any) -> str:
        return self.submit("/v1/sms", {"to": to, "content": content, **extra})

    def headers(self) -> dict[str, str]:
        """The API's authentication: the first key of HERALD_API_KEYS, when the module set any
        (none by default: the API then runs keyless on loopback)."""
        configured = self.env.get("HERALD_API_KEYS", "")
        if not configured:
            return {}
        return {"Authorization": f"Bearer {configured.split(',')[0].partition('=')[2]}"}

    def submit(self, path: str, body: dict[str, Any]) -> str:
        """POST a job to the API; its id."""
        response = httpx.post(
            f"{self.api_url}{path}", json=body, headers=self.headers(), timeout=10
        )
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    def sandbox(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call one of the sandbox's control endpoints (`/_sandbox/...`)."""
        response = httpx.request(method, f"{self.sandbox_url}{path}", timeout=10, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def job(self, job_id: str) -> dict[str, Any]:
        """The job as the API answers it, with every recipient: the answer lists the first
        page, and the rest are read from `/recipients` a page at a time."""
        url = f"{self.api_url}/v1/messages/{job_id}"
        response = httpx.get(url, headers=self.headers(), timeout=10)
        response.raise_for_status()
        job = dict(response.json())
        after = job["recipients_next"]
        while after is not None:
            page = httpx.get(
                f"{url}/recipients",
                params={"after": after, "limit": 1000},
                headers=self.headers(),
                timeout=10,
            )
            page.raise_for_status()
            job["recipients"] += page.json()["recipients"]
            after = page.json()["next"]
        return job

    def wait_settled(self, job_ids: list[str], *, timeout_s: float) -> list[dict[str, Any]]:
        """Wait until every recipient of every job is final (or unknown); return the jobs."""
        jobs: dict[str, dict[str, Any]] = {}

        def settled() -> bool:
            for job_id in job_ids:
                if job_id in jobs:
                    continue
                job = self.job(job_id)
                if all(r["status"] in FINAL_OR_SETTLED for r in job["recipients"]):
                    jobs[job_id] = job
            return len(jobs) == len(job_ids)

        try:
            wait_until(settled, timeout_s=timeout_s, what=f"{len(job_ids)} jobs to settle")
        except AssertionError:
            open_jobs = [self.job(j) for j in job_ids if j not in jobs][:3]
            raise AssertionError(f"not settled: {open_jobs}\n{self.logs_tail()}") from None
        return [jobs[j] for j in job_ids]

    def sandbox_sends(self) -> list[dict[str, Any]]:
        return list(httpx.get(f"{self.sandbox_url}/_sandbox/log", timeout=10).json())

    def logs_tail(self) -> str:
        return "\n".join(
            f"--- {name} ---\n{child.log()[-2500:]}" for name, child in self.children.items()
        )


@pytest.fixture(scope="module")
def system(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[System]:
    """The system for one test module; a module may set `SYSTEM_ENV` (settings laid over the
    defaults below) and `WORKER_CONCURRENCY`."""
    folder = tmp_path_factory.mktemp("system")
    database = next(REDIS_DATABASES)
    redis.Redis.from_url(REDIS.url(database)).flushdb()
    api_port, sandbox_port = free_port(), free_port()
    api_url, sandbox_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{sandbox_port}"
    env = {
        **os.environ,
        "HERALD_DATABASE_URL": f"sqlite:///{folder / 'store.db'}",
        "HERALD_REDIS_URL": REDIS.url(database),
        "HERALD_VEESING_SMS_BASE": sandbox_url,
        "HERALD_VEESING_CLOUD_BASE": sandbox_url,
        "HERALD_RELEASE_INTERVAL_S": "0.5",
        "HERALD_SWEEP_INTERVAL_S": "2",
        "HERALD_REQUEUE_AFTER_S": "5",
        "HERALD_SENDING_TIMEOUT_S": "12",
        "HERALD_FIVEC_POLL_INTERVAL_S": "1",
        "HERALD_TASK_TIME_LIMIT_S": "9",
        "HERALD_HTTP_CONNECT_TIMEOUT_S": "2",
        "HERALD_HTTP_READ_TIMEOUT_S": "5",
        "HERALD_CHUANGRUI_URL": f"{sandbox_url}/chuangrui/sms",
        "HERALD_CHUANGRUI_NAME": "sandbox-name",
        "HERALD_CHUANGRUI_PWD": "sandbox-pwd",
        "HERALD_CHUANGRUI_ACCESS_SECRET": "sandbox-access-secret",
        "HERALD_CHUANGRUI_MO_NAME": "sandbox-mo-name",
        "HERALD_CHUANGRUI_MO_PWD": "sandbox-mo-pwd",
        "HERALD_FIVEC_BASE": sandbox_url,
        "HERALD_FIVEC_APIKEY": "sandbox-apikey",
        "HERALD_FIVEC_USERNAME": "sandbox-username",
        "HERALD_FIVEC_PASSWORD": "sandbox-password",
        "SANDBOX_VEESING_APP_ID": os.environ["HERALD_VEESING_APP_ID"],
        "SANDBOX_VEESING_APP_KEY": os.environ["HERALD_VEESING_APP_KEY"],
        "SANDBOX_VEESING_SMS_PUSH_URL": f"{api_url}/callbacks/veesing/sms/{CALLBACK_TOKEN}",
        "SANDBOX_VEESING_MMS_PUSH_URL": f"{api_url}/callbacks/veesing/mms/{CALLBACK_TOKEN}",
        "SANDBOX_VEESING_VOICE_PUSH_URL": f"{api_url}/callbacks/veesing/voice/{CALLBACK_TOKEN}",
        "SANDBOX_CHUANGRUI_REPORT_URL": f"{api_url}/callbacks/chuangrui/report",
        "SANDBOX_CHUANGRUI_MO_URL": f"{api_url}/callbacks/chuangrui/mo",
        "SANDBOX_CHUANGRUI_MO_NAME": "sandbox-mo-name",
        "SANDBOX_CHUANGRUI_MO_PWD": "sandbox-mo-pwd",
        "SANDBOX_MMS_AUDIT_DELAY_S": "0.5",
        "SANDBOX_PUSH_DELAY_S": "0.5",
        "SANDBOX_LOG_FILE": str(folder / "sandbox-sends.jsonl"),
        **getattr(request.module, "SYSTEM_ENV", {}),
    }
    system = System(folder, env, api_url, sandbox_url)
    try:
        sandbox = system.start(
            "sandbox",
            [PYTHON, "-m", "worker.sandbox", "--host", "127.0.0.1", "--port", str(sandbox_port)],
        )
        wait_http(f"{sandbox_url}/_sandbox/log", sandbox)
        api = system.start(
            "api",
            [
                PYTHON,
                "-m",
                "uvicorn",
                "worker.api:api",
                "--host",
                "127.0.0.1",
                "--port",
                str(api_port),
            ],
        )
        wait_http(f"{api_url}/healthz", api)
        system.start_worker(getattr(request.module, "WORKER_CONCURRENCY", 2))
        system.start(
            "beat",
            [
                PYTHON,
                "-m",
                "celery",
                "-A",
                "worker",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(folder / "beat-schedule"),
            ],
        )
        yield system
    finally:
        system.stop_all()


@pytest.fixture(scope="module")
def engine(system: System) -> Iterator[Engine]:
    """The module's store (its SQLite file), for what the API does not show."""
    engine = make_engine(system.env["HERALD_DATABASE_URL"])
    yield engine
    engine.dispose()
