"""Delayed pushes to the configured callback URLs, retried like a vendor would, at a bounded
concurrency so that a flood of receipts never starves the sandbox's own API.

A push is a form-encoded POST. Vendors push one report per request (Veesing: "每产生一条回执,
则推送一条") or one per sendid and state (Chuangrui); the callers build them so, and this module
sends each as it is. Pushes wait in a timer heap until due, then in a queue drained by
`push_workers` workers sharing one aiohttp client that keeps a connection per worker
(`push_clients`): no push waits for a connection, and a push that waits for a free worker has not
been tried yet.

A try is a request the receiver failed: a connection error, a timeout, or an answer that is not
2xx. After `push_attempts` tries (waiting `push_retry_s`, then twice that, ... between them) the
push is given up. A client-side failure that says nothing about the receiver (the pool of an
injected httpx transport had no free connection) is not a try: the push is tried again after
`push_retry_s`. Every push ends in the push log (`GET /_sandbox/pushes`), delivered or given up.

The pipeline runs on its own thread with its own event loop (`push_thread`, the default) or as
tasks on the app's loop; see docs/sandbox.md for the measurements behind the default.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from worker.sandbox.config import SandboxConfig
from worker.sandbox.push_clients import (
    CLIENT_FAILED,
    DELIVERED,
    AiohttpPushClient,
    PushClient,
    TransportPushClient,
)
from worker.sandbox.state import SandboxState

log = logging.getLogger("worker.sandbox.pushes")


@dataclass
class Push:
    kind: str
    url: str
    fields: dict[str, str]
    encoding: str
    generation: int
    tries: int = 0


class PushSender:
    """Schedules pushes from the app (any thread) and delivers them on the push loop."""

    def __init__(
        self,
        config: SandboxConfig,
        state: SandboxState,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._config = config
        self._state = state
        self._transport = transport
        self._lock = threading.Lock()
        self._inbox: list[tuple[float, Push]] = []
        self._generation = 0
        self._pending = 0
        self._results: Counter[str] = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._stopped: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None
        self._started = threading.Event()
        self._order = itertools.count()

    def schedule(
        self,
        kind: str,
        url: str,
        fields: Mapping[str, str],
        *,
        delay_s: float,
        encoding: str = "utf-8",
    ) -> None:
        """POST `fields` form-encoded to `url` after `delay_s`; nothing when `url` is empty."""
        if not url:
            return
        due = time.monotonic() + max(delay_s, 0.0)
        with self._lock:
            push = Push(kind, url, dict(fields), encoding, self._generation)
            first = not self._inbox
            self._inbox.append((due, push))
            self._pending += 1
        self._ensure_started()
        if first:
            self._wake()

    @property
    def pending(self) -> int:
        """Pushes scheduled and not yet delivered or given up."""
        return self._pending

    def summary(self) -> dict[str, Any]:
        """Counts of the pushes since the last reset: pending, delivered, given up."""
        with self._lock:
            return {
                "pending": self._pending,
                "delivered": self._results["delivered"],
                "given_up": self._results["given_up"],
                "workers": self._config.push_workers,
            }

    def cancel_all(self) -> None:
        """Forget every push not yet finished (those in flight end unrecorded)."""
        with self._lock:
            self._generation += 1
            self._inbox.clear()
            self._pending = 0
            self._results.clear()
        self._wake()

    async def start(self) -> None:
        """Start the pipeline (else the first push does): its thread, or tasks on this loop."""
        self._ensure_started()

    async def close(self) -> None:
        """Stop the pipeline; pushes not yet finished are forgotten."""
        self.cancel_all()
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None:
            loop.call_soon_threadsafe(stopped.set)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
        elif self._task is not None:
            await self._task
        self._thread, self._task, self._loop = None, None, None
        self._started.clear()

    def _ensure_started(self) -> None:
        """Start the pipeline once. On the app's loop it is a task that takes the inbox when it
        first runs; on its own thread, wait until that thread's loop can be woken."""
        if self._thread is not None or self._task is not None:
            return
        with self._lock:
            if self._thread is not None or self._task is not None:
                return
            if not self._config.push_thread:
                self._task = asyncio.get_running_loop().create_task(self._run())
                return
            self._thread = threading.Thread(
                target=lambda: asyncio.run(self._run()), name="sandbox-pushes", daemon=True
            )
            self._thread.start()
        self._started.wait()

    def _wake(self) -> None:
        loop, wakeup = self._loop, self._wakeup
        if loop is None or wakeup is None:
            return
        with contextlib.suppress(RuntimeError):  # the push loop has just closed
            loop.call_soon_threadsafe(wakeup.set)

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        self._stopped = asyncio.Event()
        self._started.set()
        workers = self._config.push_workers
        queue: asyncio.Queue[Push] = asyncio.Queue()
        heap: list[tuple[float, int, Push]] = []
        timeout_s = self._config.push_timeout_s
        client: PushClient = (
            AiohttpPushClient(workers, timeout_s)
            if self._transport is None
            else TransportPushClient(self._transport, timeout_s)
        )
        tasks = [asyncio.create_task(self._work(client, queue, heap)) for _ in range(workers)]
        dispatcher = asyncio.create_task(self._dispatch(queue, heap))
        await self._stopped.wait()
        for task in (*tasks, dispatcher):
            task.cancel()
        await asyncio.gather(*tasks, dispatcher, return_exceptions=True)
        await client.close()

    async def _dispatch(
        self, queue: asyncio.Queue[Push], heap: list[tuple[float, int, Push]]
    ) -> None:
        """Move due pushes from the inbox and the timer heap to the workers' queue.

        Runs until the pipeline is stopped, not only until cancelled: Python 3.11's `wait_for`
        swallows a cancellation that arrives as the wakeup it waits on is set (`close` does
        both at once), and the dispatcher would then wait forever on an empty heap."""
        assert self._wakeup is not None and self._stopped is not None
        generation = -1
        while not self._stopped.is_set():
            self._wakeup.clear()
            with self._lock:
                inbox, self._inbox = self._inbox, []
                current = self._generation
            if current != generation:
                generation = current
                heap[:] = [item for item in heap if item[2].generation == current]
                heapq.heapify(heap)
            for due, push in inbox:
                heapq.heappush(heap, (due, next(self._order), push))
            now = time.monotonic()
            while heap and heap[0][0] <= now:
                queue.put_nowait(heapq.heappop(heap)[2])
            timeout = heap[0][0] - now if heap else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)

    async def _work(
        self,
        client: PushClient,
        queue: asyncio.Queue[Push],
        heap: list[tuple[float, int, Push]],
    ) -> None:
        while True:
            push = await queue.get()
            if push.generation != self._generation:
                continue
            error = await self._try(client, push)
            if error is DELIVERED:
                self._finish(push, "delivered", "")
                continue
            if error == CLIENT_FAILED:
                self._later(heap, push, self._config.push_retry_s)
                continue
            push.tries += 1
            if push.tries >= self._config.push_attempts:
                log.warning("push %s to %s given up: %s", push.kind, push.url, error)
                self._finish(push, "given_up", error)
                continue
            self._later(heap, push, self._config.push_retry_s * 2 ** (push.tries - 1))

    def _later(self, heap: list[tuple[float, int, Push]], push: Push, wait_s: float) -> None:
        """Back to the timer heap, due in `wait_s` (called on the push loop)."""
        heapq.heappush(heap, (time.monotonic() + wait_s, next(self._order), push))
        assert self._wakeup is not None
        self._wakeup.set()

    async def _try(self, client: PushClient, push: Push) -> str | None:
        """`DELIVERED`; `CLIENT_FAILED` when the client failed before reaching the receiver (not
        a try); else what the receiver did wrong."""
        body = urlencode(push.fields, encoding=push.encoding).encode("ascii")
        content_type = f"application/x-www-form-urlencoded;charset={push.encoding}"
        try:
            return await client.post(push.url, body, content_type)
        except Exception as exc:  # a push must end in the log, whatever went wrong
            log.exception("push %s to %s failed in the client", push.kind, push.url)
            return f"{type(exc).__name__}: {exc}"

    def _finish(self, push: Push, result: str, error: str) -> None:
        entry = {
            "kind": push.kind,
            "url": push.url,
            "fields": push.fields,
            "attempts": push.tries if result == "given_up" else push.tries + 1,
            "result": result,
            "error": error,
            "at": self._state.clock.now().isoformat(),
        }
        with self._lock:
            if push.generation != self._generation:
                return
            self._state.pushes.append(entry)
            self._results[result] += 1
            self._pending -= 1
