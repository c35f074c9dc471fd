"""Delayed pushes to the configured callback URLs, as asyncio tasks, retried like a vendor would.

A push is a form-encoded POST. It is tried `push_attempts` times, waiting `push_retry_s`,
then twice that, ... between tries, while the receiver is down or answers anything but 2xx;
then it is given up. Every push ends in the push log (`GET /_sandbox/pushes`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from urllib.parse import urlencode

import httpx

from worker.sandbox.config import SandboxConfig
from worker.sandbox.state import SandboxState

log = logging.getLogger("worker.sandbox.pushes")


class PushSender:
    def __init__(
        self,
        config: SandboxConfig,
        state: SandboxState,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._config = config
        self._state = state
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=self._transport, timeout=self._config.push_timeout_s
            )
        return self._client

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
        body = urlencode(dict(fields), encoding=encoding).encode("ascii")
        task = asyncio.get_running_loop().create_task(
            self._deliver(kind, url, dict(fields), body, max(delay_s, 0.0), encoding)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def _deliver(
        self,
        kind: str,
        url: str,
        fields: dict[str, str],
        body: bytes,
        delay_s: float,
        encoding: str,
    ) -> None:
        await asyncio.sleep(delay_s)
        headers = {"Content-Type": f"application/x-www-form-urlencoded;charset={encoding}"}
        wait_s = self._config.push_retry_s
        error = ""
        for attempt in range(1, self._config.push_attempts + 1):
            try:
                reply = await self._http().post(url, content=body, headers=headers)
                if reply.is_success:
                    self._record(kind, url, fields, attempt, "delivered", "")
                    return
                error = f"HTTP {reply.status_code}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            if attempt < self._config.push_attempts:
                await asyncio.sleep(wait_s)
                wait_s *= 2
        log.warning("push %s to %s given up: %s", kind, url, error)
        self._record(kind, url, fields, self._config.push_attempts, "given_up", error)

    def _record(
        self, kind: str, url: str, fields: dict[str, str], attempts: int, result: str, error: str
    ) -> None:
        self._state.pushes.append(
            {
                "kind": kind,
                "url": url,
                "fields": fields,
                "attempts": attempts,
                "result": result,
                "error": error,
                "at": self._state.clock.now().isoformat(),
            }
        )

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    async def close(self) -> None:
        self.cancel_all()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
