"""How much load the vendor sandbox takes: sends per second and receipt pushes per second.

`measure_sandbox()` starts the sandbox (`python -m worker.sandbox`, as herald's stack runs it)
and a trivial push receiver, each in its own process, and measures three phases on Veesing SMS
group sends of `batch` phones, `concurrency` requests in flight:

1. sends: `sends` phones, their receipts held back (`hold_s`): what the send API takes alone;
2. pushes: the held receipts all fall due at once and go to the receiver; pushes per second
   from the first to the last one received, while a probe keeps calling the balance endpoint
   (its latency says whether the pushes starve the API);
3. mixed: `sends` more phones with their receipts pushed as soon as they are due (no hold),
   the campaign case; sends per second, and seconds until the last receipt arrived.

Every phone is distinct, so the sandbox's minute rule and daily caps never refuse one. The
receiver counts what arrives; `lost` is what never did (given up by the sandbox, or dropped).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

ROOT = Path(__file__).resolve().parents[1]
SEND_PATH = "/smsApi/group"
BALANCE_PATH = "/smsApi/group/getBalance"
CREDENTIALS = {"appId": "bench-app", "appKey": "bench-key"}
CONTENT = "【herald】bench receipt flow"
SHANGHAI = ZoneInfo("Asia/Shanghai")
PROBE_TIMEOUT_S = 10.0


def measure_sandbox(
    *,
    sends: int = 20_000,
    batch: int = 100,
    concurrency: int = 8,
    hold_s: float = 20.0,
    env: Mapping[str, str] | None = None,
    root: Path | None = None,
    timeout_s: float = 300.0,
) -> dict[str, Any]:
    """Figures of one run (see the module docstring); `env` adds SANDBOX_* settings, `root` is
    the checkout whose `worker.sandbox` runs (default: this one, e.g. an older one to compare)."""
    with (
        _receiver() as (receiver_port, counters),
        _sandbox(receiver_port, env or {}, root or ROOT) as (base_url, pid),
    ):
        return asyncio.run(
            _measure(base_url, pid, counters, sends, batch, concurrency, hold_s, timeout_s)
        )


Counters = tuple["Synchronized[int]", "Synchronized[float]", "Synchronized[float]"]


async def _measure(
    base_url: str,
    pid: int,
    counters: Counters,
    sends: int,
    batch: int,
    concurrency: int,
    hold_s: float,
    timeout_s: float,
) -> dict[str, Any]:
    received, first_at, last_at = counters
    limits = httpx.Limits(max_connections=concurrency + 1)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
        hold_until = datetime.now(SHANGHAI) + timedelta(seconds=hold_s)
        send_time = hold_until.strftime("%Y-%m-%d %H:%M:%S")
        cpu_started = _cpu_s(pid)
        held = await _send_all(client, 0, sends, batch, concurrency, send_time)
        send_cpu_s = _cpu_s(pid) - cpu_started
        overlapped = received.value
        await _wait_first(received, timeout_s)
        cpu_started = _cpu_s(pid)
        probe_stop = asyncio.Event()
        probe = asyncio.create_task(_probe(client, probe_stop))
        delivered = await _wait_count(received, sends, timeout_s)
        probe_stop.set()
        probe_latencies, probe_failures = await probe
        push_cpu_s = _cpu_s(pid) - cpu_started
        push_span = last_at.value - first_at.value

        mixed_started = time.monotonic()
        before = received.value
        mixed = await _send_all(client, sends, sends, batch, concurrency, None)
        mixed_delivered = await _wait_count(received, before + sends, timeout_s) - before
        mixed_span = time.monotonic() - mixed_started
        sent = (await client.get("/_sandbox/log/summary")).json()
        pushed = (await client.get("/_sandbox/pushes/summary")).json()
    return {
        "sends": sends,
        "batch": batch,
        "concurrency": concurrency,
        "sends_per_s": round(held["phones_per_s"]),
        "send_p50_ms": held["p50_ms"],
        "send_p99_ms": held["p99_ms"],
        "send_errors": held["errors"],
        "sandbox_cpu_us_per_send": round(send_cpu_s / sends * 1e6, 1),
        "pushes_before_hold_ended": overlapped,
        "pushes_per_s": round(delivered / push_span) if push_span > 0 else None,
        "pushes_lost": sends - delivered,
        "sandbox_cpu_us_per_push": round(push_cpu_s / max(delivered, 1) * 1e6, 1),
        "api_p50_ms_during_pushes": _percentile(probe_latencies, 50),
        "api_p99_ms_during_pushes": _percentile(probe_latencies, 99),
        "api_max_ms_during_pushes": round(max(probe_latencies, default=0.0), 1),
        "api_failures_during_pushes": probe_failures,
        "mixed_sends_per_s": round(mixed["phones_per_s"]),
        "mixed_send_p99_ms": mixed["p99_ms"],
        "mixed_send_errors": mixed["errors"],
        "mixed_all_receipts_s": round(mixed_span, 2),
        "mixed_pushes_lost": sends - mixed_delivered,
        "sandbox_sends_logged": sent["sends"],
        "sandbox_numbers_sent_twice": sent["repeated"],
        "sandbox_pushes_given_up": pushed["given_up"],
    }


async def _send_all(
    client: httpx.AsyncClient,
    first_phone: int,
    phones: int,
    batch: int,
    concurrency: int,
    send_time: str | None,
) -> dict[str, Any]:
    """Send `phones` distinct numbers in batches; a `send_time` holds their receipts until
    then (the document's scheduled send)."""
    starts = iter(range(first_phone, first_phone + phones, batch))
    latencies: list[float] = []
    errors = 0

    async def worker() -> None:
        nonlocal errors
        for start in starts:
            count = min(batch, first_phone + phones - start)
            numbers = ",".join(f"139{n:08d}" for n in range(start, start + count))
            data = {**CREDENTIALS, "phone": numbers, "content": CONTENT}
            if send_time is not None:
                data["sendTime"] = send_time
            began = time.perf_counter()
            try:
                reply = await client.post(SEND_PATH, data=data)
                ok = reply.status_code == 200 and reply.json().get("returnStatus") == "1 "
            except httpx.HTTPError:
                ok = False
            latencies.append((time.perf_counter() - began) * 1000)
            errors += 0 if ok else 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "phones_per_s": phones / elapsed,
        "p50_ms": _percentile(latencies, 50),
        "p99_ms": _percentile(latencies, 99),
        "errors": errors,
    }


async def _probe(client: httpx.AsyncClient, stop: asyncio.Event) -> tuple[list[float], int]:
    """Balance calls one after another until `stop`: their latencies, and how many failed (a
    timeout after `PROBE_TIMEOUT_S` is what herald would see as a vendor not answering)."""
    latencies: list[float] = []
    failures = 0
    while not stop.is_set():
        began = time.perf_counter()
        try:
            reply = await client.post(BALANCE_PATH, data=CREDENTIALS, timeout=PROBE_TIMEOUT_S)
            failures += 0 if reply.status_code == 200 else 1
        except httpx.HTTPError:
            failures += 1
        latencies.append((time.perf_counter() - began) * 1000)
        await asyncio.sleep(0.01)
    return latencies, failures


async def _wait_first(received: Synchronized[int], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while received.value == 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


async def _wait_count(received: Synchronized[int], target: int, timeout_s: float) -> int:
    """Wait until `target` pushes arrived, or nothing arrived for 15 s; the count reached."""
    deadline = time.monotonic() + timeout_s
    last, still_since = received.value, time.monotonic()
    while received.value < target and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        if received.value != last:
            last, still_since = received.value, time.monotonic()
        elif time.monotonic() - still_since > 15:
            break
    return int(received.value)


def _percentile(values: list[float], pct: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[pct - 1], 1)


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process has used: the machine's other load does not
    change it, so it compares runs better than rates on a busy machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


@contextmanager
def _sandbox(receiver_port: int, env: Mapping[str, str], root: Path) -> Iterator[tuple[str, int]]:
    """The sandbox in its own process, pushing Veesing SMS receipts to the receiver."""
    port = _free_port()
    settings = {
        "SANDBOX_VEESING_APP_ID": CREDENTIALS["appId"],
        "SANDBOX_VEESING_APP_KEY": CREDENTIALS["appKey"],
        "SANDBOX_VEESING_SMS_PUSH_URL": f"http://127.0.0.1:{receiver_port}/push/bench-token",
        "SANDBOX_PUSH_DELAY_S": "0",
        "SANDBOX_MINUTE_RULE_S": "0",
        "SANDBOX_ACCOUNT_DAILY_CAP": "100000000",
        "SANDBOX_BALANCE": "100000000",
        "SANDBOX_SEED": "1",
    }
    settings.update(env)
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("SANDBOX_")}
    child_env.update(settings)
    child_env["PYTHONPATH"] = str(root)
    command = [sys.executable, "-m", "worker.sandbox", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--log-level", "warning"],
        cwd=root,
        env=child_env,
        stdout=subprocess.DEVNULL,
    )
    try:
        _wait_port(port)
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def _receiver() -> Iterator[tuple[int, Counters]]:
    """A trivial push receiver (raw asyncio HTTP/1.1, keep-alive, answers `ok`) in its own
    process, counting the requests it got and when the first and last arrived."""
    context = multiprocessing.get_context("fork")
    port = _free_port()
    received = context.Value("q", 0)
    first_at = context.Value("d", 0.0)
    last_at = context.Value("d", 0.0)
    process = context.Process(
        target=_serve_receiver, args=(port, received, first_at, last_at), daemon=True
    )
    process.start()
    try:
        _wait_port(port)
        yield port, (received, first_at, last_at)
    finally:
        process.terminate()
        process.join(timeout=10)


def _serve_receiver(
    port: int,
    received: Synchronized[int],
    first_at: Synchronized[float],
    last_at: Synchronized[float],
) -> None:
    reply = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                if length:
                    await reader.readexactly(length)
                now = time.time()
                with received.get_lock():
                    if received.value == 0:
                        first_at.value = now
                    received.value += 1
                    last_at.value = now
                writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())
