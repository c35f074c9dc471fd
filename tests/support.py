"""Helpers for tests: free ports, a private redis-server, and child processes with logs.

Integration tests run the real programs (`celery -A worker worker`, uvicorn, the sandbox) as
child processes, as `herald up` does, so that acks, redelivery and crashes are real.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis

IN_CI = os.environ.get("CI") == "true"
PYTHON = sys.executable
HERALD = str(Path(sys.executable).with_name("herald"))
"""The installed console script, as a user runs it."""


def need(what: str) -> None:
    """Skip where a service is missing locally; under CI a missing service is a failure."""
    if IN_CI:
        pytest.fail(f"{what} is required under CI")
    pytest.skip(f"{what} is not available")


def die_with_parent() -> None:
    """In the child, before exec: SIGTERM it when the test run dies, even by SIGKILL (Linux),
    so a killed pytest leaves no worker, API or sandbox running."""
    if sys.platform == "linux":
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


REDIS_DATABASES = 256
"""Each integration module takes a database of its own (tests/integration/conftest.py); Redis's
default of 16 is too few for the suite."""


@dataclass
class RedisServer:
    """A redis-server of the test run's own, on a free port, that tests may kill and restart."""

    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.folder),
                "--save",
                "",
                "--appendonly",
                "no",
                "--databases",
                str(REDIS_DATABASES),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        wait_until(self.answers, timeout_s=10, what="redis-server")

    def answers(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0

    def start(self) -> Child:
        self.started_at = time.monotonic()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill_hard(self) -> None:
        """SIGKILL the whole process group: the main process and every pool child."""
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill_hard()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_child(name: str, argv: list[str], env: Mapping[str, str], log_dir: Path) -> Child:
    log_dir.mkdir(parents=True, exist_ok=True)
    return Child(name, argv, dict(env), log_dir / f"{name}.log").start()


def wait_http(url: str, child: Child, *, timeout_s: float = 30) -> None:
    def answers() -> bool:
        if not child.alive():
            raise AssertionError(f"{child.name} exited:\n{child.log()[-3000:]}")
        try:
            return httpx.get(url, timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    wait_until(answers, timeout_s=timeout_s, what=f"{child.name} at {url}")


class SettingsEnv:
    """Sets HERALD_ variables for one test and makes the next `get_settings()` read them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._monkeypatch = monkeypatch

    def setenv(self, name: str, value: str) -> None:
        from worker.settings import get_settings

        self._monkeypatch.setenv(name, value)
        get_settings.cache_clear()
