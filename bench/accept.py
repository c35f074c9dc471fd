"""How fast the API accepts jobs: one big job, and many single-recipient jobs at once.

`measure_accept` talks HTTP to an API that is already running (the caller's stack, or one
started by `serve_api`), so the figures include everything a producer waits for: the request
read and validated, the job and its deliveries committed, the send task enqueued, the answer.
Jobs are accepted, not sent: without workers they stay queued.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

CONTENT = "【Herald】bench"
MOBILE_BASE = 13000000000
"""Bench numbers are 130 0000 0000 upwards: every one a valid mainland mobile number."""


@dataclass(frozen=True)
class AcceptFigures:
    """What `measure_accept` measured; a figure is None when that part was not run."""

    big_job_recipients: int
    big_job_s: float | None
    """From sending the request of one job of `big_job_recipients` numbers to its 202."""
    single_jobs: int
    clients: int
    single_jobs_per_s: float | None
    """Single-recipient jobs accepted per second by `clients` concurrent HTTP clients."""
    single_p50_ms: float | None
    single_p99_ms: float | None


def numbers(count: int, *, start: int = 0) -> list[str]:
    return [str(MOBILE_BASE + start + n) for n in range(count)]


def measure_accept(
    base_url: str,
    *,
    api_key: str | None = None,
    big_job_recipients: int = 100_000,
    single_jobs: int = 2000,
    clients: int = 8,
    timeout_s: float = 120.0,
) -> AcceptFigures:
    """Post one job of `big_job_recipients` numbers (0: skip), then `single_jobs` jobs of one
    number each from `clients` threads with a kept-alive connection each (0: skip).

    Raises `RuntimeError` when a job is not answered 202: a figure for refused jobs is no figure.
    """
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    big_job_s = None
    if big_job_recipients:
        with httpx.Client(base_url=base_url, headers=headers, timeout=timeout_s) as client:
            body = {"to": numbers(big_job_recipients), "content": CONTENT}
            started = time.perf_counter()
            response = client.post("/v1/sms", json=body)
            big_job_s = time.perf_counter() - started
            expect_accepted(response)
    per_s = p50 = p99 = None
    if single_jobs:
        latencies, elapsed = post_single_jobs(base_url, headers, single_jobs, clients, timeout_s)
        per_s = single_jobs / elapsed
        cuts = statistics.quantiles(latencies, n=100, method="inclusive")
        p50, p99 = cuts[49] * 1000, cuts[98] * 1000
    return AcceptFigures(
        big_job_recipients=big_job_recipients,
        big_job_s=big_job_s,
        single_jobs=single_jobs,
        clients=clients,
        single_jobs_per_s=per_s,
        single_p50_ms=p50,
        single_p99_ms=p99,
    )


def post_single_jobs(
    base_url: str, headers: Mapping[str, str], jobs: int, clients: int, timeout_s: float
) -> tuple[list[float], float]:
    """Latencies of `jobs` single-recipient POSTs shared by `clients` threads, and the wall
    time they took together."""
    phones = iter(numbers(jobs, start=1_000_000))
    take = threading.Lock()
    latencies: list[float] = []
    failures: list[BaseException] = []

    def client_loop() -> None:
        try:
            with httpx.Client(base_url=base_url, headers=headers, timeout=timeout_s) as client:
                while True:
                    with take:
                        phone = next(phones, None)
                    if phone is None:
                        return
                    started = time.perf_counter()
                    response = client.post("/v1/sms", json={"to": [phone], "content": CONTENT})
                    latencies.append(time.perf_counter() - started)
                    expect_accepted(response)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=client_loop) for _ in range(max(1, clients))]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"single-recipient jobs failed: {failures[0]!r}") from failures[0]
    return latencies, elapsed


def expect_accepted(response: httpx.Response) -> None:
    if response.status_code != 202:
        raise RuntimeError(f"the API answered {response.status_code}: {response.text[:500]}")


@contextmanager
def serve_api(
    env: Mapping[str, str], *, processes: int = 1, log_path: Path | None = None
) -> Iterator[str]:
    """The API under uvicorn with `processes` worker processes and the HERALD_ settings in
    `env` (added to this process's environment); yields its base URL and stops it after."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "worker.api:api", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--workers", str(processes)]
    log = log_path.open("ab") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(
        argv,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base_url, process)
        yield base_url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if log_path:
            log.close()  # type: ignore[union-attr]


def wait_until_healthy(
    base_url: str, process: subprocess.Popen[bytes], timeout_s: float = 60
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the API exited with code {process.returncode}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the API at {base_url} did not answer within {timeout_s} s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
