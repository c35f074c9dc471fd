"""The ASGI layer in front of every vendor path: request log, latency and injected faults.

Faults (see `state.Faults`):
- "reply": the vendor's own documented retry-able failure, chosen by path prefix (or the
  failure named by `reply_message`, so that any documented reply can be forced);
- "503": HTTP 503 with a short text body;
- "refuse": the connection is aborted (TCP reset) before the request body is read and nothing is
  answered. Under uvicorn the socket is reached through the server's `receive` callable; where
  that is impossible (an in-process test client) `FaultRefused` is raised instead;
- timeout after send: the vendor accepts (and logs) the message, then holds its answer for
  `stall_s` seconds, longer than any sane client read timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from worker.sandbox.common import SCOPE_KEY
from worker.sandbox.state import SandboxState

CONTROL_PREFIX = "/_sandbox"
FaultReply = tuple[str, Callable[[str | None], Response]]


class FaultRefused(ConnectionError):
    """An injected "refuse" where the socket cannot be reached (in-process test clients)."""


class VendorMiddleware:
    def __init__(
        self, app: ASGIApp, state: SandboxState, fault_replies: Sequence[FaultReply]
    ) -> None:
        self.app = app
        self.state = state
        self.fault_replies = fault_replies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or path.startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        entry: dict[str, Any] = {
            "path": path,
            "method": scope.get("method", ""),
            "start": time.time(),
        }
        note: dict[str, Any] = {"outcome": "", "accepted": False, "detail": ""}
        scope[SCOPE_KEY] = note
        status = 0
        try:
            latency = self.state.config.latency_s + self.state.faults.latency_s
            if latency > 0:
                await asyncio.sleep(latency)
            fault = self.state.draw_fault(path)
            entry["fault"] = fault
            if fault == "refuse":
                note["outcome"] = "refused"
                await _refuse(receive)
                return
            if fault is not None:
                response = self._fault_response(fault, path)
                note["outcome"] = f"fault:{fault}"
                status = response.status_code
                await response(scope, receive, send)
                return
            status = await self._forward(scope, receive, send, note, path, entry)
        finally:
            entry.update(
                end=time.time(),
                status=status,
                outcome=note["outcome"],
                accepted=note["accepted"],
                detail=note["detail"],
            )
            self.state.requests.append(entry)

    async def _forward(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        note: dict[str, Any],
        path: str,
        entry: dict[str, Any],
    ) -> int:
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        await self.app(scope, receive, hold)
        status = next((int(m["status"]) for m in held if m["type"] == "http.response.start"), 0)
        if note["accepted"] and self.state.draw_stall(path):
            entry["fault"] = "timeout_after_send"
            await asyncio.sleep(self.state.faults.stall_s)
        for message in held:
            await send(message)
        return status

    def _fault_response(self, fault: str, path: str) -> Response:
        if fault == "reply":
            for prefix, make in self.fault_replies:
                if path.startswith(prefix):
                    return make(self.state.faults.reply_message)
        return PlainTextResponse("Service Unavailable", status_code=503)


async def _refuse(receive: Receive) -> None:
    cycle = getattr(receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None or not hasattr(transport, "abort"):
        raise FaultRefused("sandbox fault: connection refused")
    transport.abort()
    # Let the server see the lost connection, so it does not try to answer a 500.
    for _ in range(3):
        await asyncio.sleep(0)
