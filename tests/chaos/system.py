"""The whole system for one chaos scenario, with every dependency its own so it may be broken.

Unlike the integration suite's shared redis-server and SQLite store, a `ChaosSystem` has:
- its own redis-server (killed with -9 and restarted; append-only file on or off),
- its own PostgreSQL database, reached through a `SwitchableTcpProxy` that can refuse
  connections (the machine's PostgreSQL itself is never touched),
- the vendor sandbox behind a `FaultProxy`: herald's vendor base URLs point at the proxy, the
  sandbox pushes its receipts straight to the API,
- the API, one or more Celery workers and one or more beats, as child processes.

The harness talks to it only through public surfaces: the HTTP API, the sandbox's `/_sandbox`
endpoints and send log, process signals, and read-only SQL on the `delivery`, `job` and
`vendorpush` tables (`sql`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.chaos.faultproxy import FaultProxy
from tests.chaos.loop import BackgroundLoop
from tests.chaos.tcpproxy import SwitchableTcpProxy
from tests.conftest import CALLBACK_TOKEN
from tests.integration.conftest import System
from tests.support import (
    PYTHON,
    Child,
    RedisServer,
    die_with_parent,
    free_port,
    wait_http,
    wait_until,
)

HTTP_READ_TIMEOUT_S = 5.0
TASK_TIME_LIMIT_S = 9
SENDING_TIMEOUT_S = 12.0
REPORT_DEADLINE_S = 10.0
LIVENESS_INTERVAL_S = 2.0
LIVENESS_TIMEOUT_S = 15.0
WORKER_STOP_GRACE_S = 30 + TASK_TIME_LIMIT_S + max(30, LIVENESS_INTERVAL_S)
"""How long a worker hung in its shutdown lives before its liveness check ends it (Celery's soft
shutdown, the task limit, a margin: worker/liveness.py `stop_grace_s`)."""


@dataclass
class ChaosRedis(RedisServer):
    """A redis-server that can be killed with SIGKILL and started again on the same port and
    folder, with the append-only file on (`appendfsync everysec`, the production advice) or with
    no persistence at all."""

    appendonly: bool = False

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server")
        self.folder.mkdir(parents=True, exist_ok=True)
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "everysec"] if self.appendonly else []
        )
        self.process = subprocess.Popen(
            [
                binary,
                *("--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.folder)),
                *("--save", "", "--appendonly", "no"),
                *persistence,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        wait_until(self.answers, timeout_s=10, what="redis-server")

    def kill9(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


@dataclass
class ChaosSystem(System):
    redis: ChaosRedis = field(kw_only=True)
    pg_proxy: SwitchableTcpProxy = field(kw_only=True)
    vendor_proxy: FaultProxy = field(kw_only=True)
    database_url: str = field(kw_only=True)
    """The store, reached directly (not through the proxy): the harness's read-only view."""
    _engine: Engine | None = None
    _log_marks: dict[str, int] = field(default_factory=dict)

    # --- processes ---

    def start_worker(self, concurrency: int = 2, name: str = "worker") -> Child:
        return self.start(
            name,
            [
                *(PYTHON, "-m", "celery", "-A", "worker", "worker", "--loglevel", "INFO"),
                *("--concurrency", str(concurrency), "--without-gossip", "--without-mingle"),
                *("--hostname", f"{name}-{time.monotonic_ns()}@%h"),
            ],
        )

    def start_beat(self, name: str = "beat") -> Child:
        return self.start(
            name,
            [
                *(PYTHON, "-m", "celery", "-A", "worker", "beat", "--loglevel", "INFO"),
                *("--schedule", str(self.folder / f"{name}-schedule")),
            ],
        )

    def start(self, name: str, argv: list[str]) -> Child:
        log = self.folder / "logs" / f"{name}.log"
        self._log_marks[name] = log.stat().st_size if log.exists() else 0
        return super().start(name, argv)

    def log_since_start(self, name: str) -> str:
        """What a child wrote since it was last started (its log file is appended to)."""
        data = self.children[name].log_path.read_bytes()[self._log_marks.get(name, 0) :]
        return data.decode(errors="replace")

    def log_marks(self) -> dict[str, int]:
        """Where each child's log ends now (see `logs_since`)."""
        return {name: child.log_path.stat().st_size for name, child in self.children.items()}

    def logs_since(self, marks: dict[str, int]) -> str:
        """Everything the children wrote since `marks`."""
        parts = []
        for name, child in self.children.items():
            data = child.log_path.read_bytes()[marks.get(name, 0) :]
            parts.append(f"--- {name} ---\n" + data.decode(errors="replace"))
        return "\n".join(parts)

    def wait_worker_ready(self, name: str = "worker", timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if "ready." in self.log_since_start(name):
                return
            if not self.children[name].alive():
                break
            time.sleep(0.2)
        raise AssertionError(f"{name} not ready after {timeout_s} s:\n{self.logs_tail()}")

    def restart(self, name: str, starter: Callable[[], Child]) -> Child:
        old = self.children.pop(name, None)
        if old is not None and old.alive():
            old.kill_hard()
        return starter()

    def revive(self, row_notes: list[str], starters: dict[str, Callable[[], Child]]) -> None:
        """Do what a supervisor (compose's `restart: unless-stopped`, `herald up`) does: start
        again a child that exited, and note that it had to (with its last error line). A worker
        that stops consuming exits on purpose for this (worker/liveness.py)."""
        for name, starter in starters.items():
            child = self.children.get(name)
            if child is not None and not child.alive():
                lines = [
                    ln
                    for ln in self.log_since_start(name).splitlines()
                    if "CRITICAL" in ln or "Unrecoverable" in ln or "Error" in ln
                ]
                code = child.process.returncode if child.process else None
                last = lines[-1][:200] if lines else f"exit {code}"
                row_notes.append(f"{name} exited ({last}); restarted as a supervisor would")
                starter()

    def pool_children(self, name: str = "worker") -> list[int]:
        """The pids of a worker's pool processes (children of its main process)."""
        process = self.children[name].process
        assert process is not None
        listed = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(process.pid)], capture_output=True, text=True
        )
        return [int(pid) for pid in listed.stdout.split()]

    def signal_group(self, name: str, signum: signal.Signals) -> None:
        process = self.children[name].process
        assert process is not None
        os.killpg(process.pid, signum)

    # --- the store, read-only ---

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = sa.create_engine(self.database_url, pool_pre_ping=True)
        return self._engine

    def sql(self, query: str, **params: Any) -> list[tuple[Any, ...]]:
        statement = sa.text(query)
        for name, value in params.items():
            if isinstance(value, list | tuple | set):
                statement = statement.bindparams(sa.bindparam(name, expanding=True))
        with self.engine.connect() as connection:
            return [tuple(row) for row in connection.execute(statement, params)]

    def close(self) -> None:
        """Stop everything at once (SIGKILL: a graceful stop proves nothing here and a worker
        stuck in its warm shutdown would hold the run for 20 s)."""
        for child in self.children.values():
            if child.alive():
                child.kill_hard()
        if self._engine is not None:
            self._engine.dispose()
        self.vendor_proxy.close()
        self.pg_proxy.refuse()
        self.redis.stop()

    # --- what the sandbox sent ---

    def send_log(self) -> list[dict[str, Any]]:
        """The sandbox's send log file: one entry per message accepted for one phone."""
        path = Path(self.env["SANDBOX_LOG_FILE"])
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def build_system(
    folder: Path,
    loop: BackgroundLoop,
    *,
    database: tuple[str, Callable[[], None]],
    appendonly: bool = False,
    env: dict[str, str] | None = None,
    workers: int = 1,
    beats: int = 1,
    concurrency: int = 2,
) -> ChaosSystem:
    """Start a system for one scenario: redis, proxies, sandbox, API, workers and beats."""
    database_url, _drop = database
    redis_server = ChaosRedis(folder / "redis", appendonly=appendonly)
    redis_server.start()
    direct = sa.engine.make_url(database_url)
    pg_host, pg_port = direct.host or "127.0.0.1", direct.port or 5432
    pg_proxy = SwitchableTcpProxy(loop, pg_host, int(pg_port))
    pg_proxy.accept()
    proxied_url = direct.set(host="127.0.0.1", port=pg_proxy.port).render_as_string(
        hide_password=False
    )
    api_port, sandbox_port = free_port(), free_port()
    api_url, sandbox_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{sandbox_port}"
    vendor_proxy = FaultProxy(loop, sandbox_url, hang_s=HTTP_READ_TIMEOUT_S + 4)
    vendors = vendor_proxy.url
    full_env = {
        **os.environ,
        "HERALD_DATA_DIR": str(folder / "data"),
        "HERALD_DATABASE_URL": proxied_url,
        "HERALD_REDIS_URL": redis_server.url(0),
        "HERALD_VEESING_SMS_BASE": vendors,
        "HERALD_VEESING_CLOUD_BASE": vendors,
        "HERALD_CHUANGRUI_URL": f"{vendors}/chuangrui/sms",
        "HERALD_CHUANGRUI_NAME": "sandbox-name",
        "HERALD_CHUANGRUI_PWD": "sandbox-pwd",
        "HERALD_CHUANGRUI_ACCESS_SECRET": "sandbox-access-secret",
        "HERALD_FIVEC_BASE": vendors,
        "HERALD_FIVEC_APIKEY": "sandbox-apikey",
        "HERALD_FIVEC_USERNAME": "sandbox-username",
        "HERALD_FIVEC_PASSWORD": "sandbox-password",
        "HERALD_BATCH_SIZE": "20",
        "HERALD_RELEASE_INTERVAL_S": "0.5",
        "HERALD_RELEASE_SAFETY_NET_S": "0.5",  # beat releases too: two beats race the workers
        "HERALD_SWEEP_INTERVAL_S": "2",
        "HERALD_REQUEUE_AFTER_S": "5",
        "HERALD_SENDING_TIMEOUT_S": str(SENDING_TIMEOUT_S),
        "HERALD_FIVEC_POLL_INTERVAL_S": "1",
        "HERALD_TASK_TIME_LIMIT_S": str(TASK_TIME_LIMIT_S),
        "HERALD_VISIBILITY_TIMEOUT_S": "30",
        "HERALD_HTTP_CONNECT_TIMEOUT_S": "2",
        "HERALD_HTTP_READ_TIMEOUT_S": str(HTTP_READ_TIMEOUT_S),
        "HERALD_RETRY_BASE_S": "0.2",
        "HERALD_RETRY_MAX_S": "2",
        "HERALD_MAX_ERROR_ATTEMPTS": "30",
        # A recipient whose report was lost becomes unknown after 10 s, not 72 h.
        "HERALD_REPORT_DEADLINE_S": str(REPORT_DEADLINE_S),
        # A worker that stopped consuming exits after 15 s, not 180 s.
        "HERALD_LIVENESS_INTERVAL_S": str(LIVENESS_INTERVAL_S),
        "HERALD_LIVENESS_TIMEOUT_S": str(LIVENESS_TIMEOUT_S),
        # herald's own one-message-per-minute rule holds a number whose batch a killed worker
        # reserved; 10 s instead of 60, as every other timeout here is shortened.
        "HERALD_LIMITS": '{"veesing:sms": {"minute_s": 10}}',
        "SANDBOX_VEESING_APP_ID": os.environ["HERALD_VEESING_APP_ID"],
        "SANDBOX_VEESING_APP_KEY": os.environ["HERALD_VEESING_APP_KEY"],
        "SANDBOX_VEESING_SMS_PUSH_URL": f"{api_url}/callbacks/veesing/sms/{CALLBACK_TOKEN}",
        "SANDBOX_VEESING_MMS_PUSH_URL": f"{api_url}/callbacks/veesing/mms/{CALLBACK_TOKEN}",
        "SANDBOX_VEESING_VOICE_PUSH_URL": f"{api_url}/callbacks/veesing/voice/{CALLBACK_TOKEN}",
        "SANDBOX_CHUANGRUI_REPORT_URL": f"{api_url}/callbacks/chuangrui/report",
        "SANDBOX_CHUANGRUI_MO_URL": f"{api_url}/callbacks/chuangrui/mo",
        "SANDBOX_MMS_AUDIT_DELAY_S": "0.5",
        "SANDBOX_PUSH_DELAY_S": "0.5",
        # The vendor's one-per-minute rule only postpones a second send by a minute (herald
        # gives back its own minute reservation when a call "was not sent"): off, so the suite
        # sees a duplicate without waiting for it.
        "SANDBOX_MINUTE_RULE_S": "0",
        "SANDBOX_SEED": "9",
        "SANDBOX_LOG_FILE": str(folder / "sandbox-sends.jsonl"),
        **(env or {}),
    }
    system = ChaosSystem(
        folder,
        full_env,
        api_url,
        sandbox_url,
        redis=redis_server,
        pg_proxy=pg_proxy,
        vendor_proxy=vendor_proxy,
        database_url=database_url,
    )
    try:
        sandbox = system.start(
            "sandbox",
            [PYTHON, "-m", "worker.sandbox", "--host", "127.0.0.1", "--port", str(sandbox_port)],
        )
        api = system.start(
            "api",
            [
                *(PYTHON, "-m", "uvicorn", "worker.api:api", "--host", "127.0.0.1"),
                *("--port", str(api_port), "--no-access-log"),
            ],
        )
        wait_http(f"{sandbox_url}/_sandbox/log", sandbox)
        wait_http(f"{api_url}/healthz", api)  # its start creates the tables
        for n in range(workers):
            system.start_worker(concurrency, name="worker" if n == 0 else f"worker{n + 1}")
        for n in range(beats):
            system.start_beat("beat" if n == 0 else f"beat{n + 1}")
        for n in range(workers):
            system.wait_worker_ready("worker" if n == 0 else f"worker{n + 1}")
    except BaseException:
        system.close()
        raise
    return system
