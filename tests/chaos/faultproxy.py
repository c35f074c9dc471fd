"""An HTTP proxy in front of the vendor sandbox that breaks exchanges on purpose.

herald's vendor base URLs point here; each request is matched against the current plan (a list
of `Fault` rules, first match wins) and either forwarded untouched or broken in one way:

    before forwarding (the vendor never sees the request)
        502_before      answer 502 Bad Gateway (an nginx page)
        reset_before    read the request, then reset the connection
    after forwarding (the vendor took the request and answered)
        502_after       answer 502 instead of the vendor's reply
        hang_after      answer nothing until well past herald's read timeout, then close
        html_after      answer 200 with an HTML page (a captive portal, a WAF, a CDN error)
        truncated_after the vendor's status and headers, the first half of its body
        misencoded_after the vendor's body re-encoded as GBK, still labelled UTF-8
        reset_after     reset the connection instead of answering
        kill_after      call the plan's hook (the harness kills a worker), then reset
        call_after      call the plan's hook (the harness breaks the store), then answer

The sandbox's own fault injection (docs/sandbox.md) breaks requests *instead of* handling them;
this proxy is what makes a vendor that *did* take the message look broken to herald. Every
request it sees is recorded in `events` with what it did and what the vendor answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote_plus

import httpx

from tests.chaos.loop import BackgroundLoop
from tests.chaos.tcpproxy import reset
from tests.support import free_port

Action = Literal[
    "pass",
    "502_before",
    "reset_before",
    "502_after",
    "hang_after",
    "html_after",
    "truncated_after",
    "misencoded_after",
    "reset_after",
    "kill_after",
    "call_after",
]
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}
HTML_PAGE = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


@dataclass
class Fault:
    """Break requests whose path starts with one of `paths` (empty: all) and whose decoded
    form body contains `marker` (None: any): a share `rate` of them drawn at random, or, with
    `pattern`, the requests where the cycled pattern says 1 ("0010" breaks every fourth); at
    most `limit` of them (None: no limit). An "after" fault with `reply_matches` breaks only
    an exchange whose vendor reply matches that pattern (a 5C report page with records in it,
    not "no record"); the others pass and are not counted."""

    action: Action
    paths: Sequence[str] = ()
    marker: str | None = None
    rate: float = 1.0
    pattern: str | None = None
    limit: int | None = None
    reply_matches: bytes | None = None
    _count: itertools.count[int] = field(default_factory=itertools.count, repr=False)
    _broken: int = 0

    def matches(self, request: Request) -> bool:
        if self.paths and not any(request.path.startswith(p) for p in self.paths):
            return False
        return self.marker is None or self.marker in request.text

    def draw(self, rng: random.Random) -> bool:
        if self.limit is not None and self._broken >= self.limit:
            return False
        n = next(self._count)
        hit = (
            self.pattern[n % len(self.pattern)] == "1" if self.pattern else rng.random() < self.rate
        )
        self._broken += hit
        return hit

    def spare(self, reply: bytes) -> bool:
        """After forwarding: whether this reply is not one to break (then it is not counted)."""
        if self.reply_matches is None or re.search(self.reply_matches, reply):
            return False
        self._broken -= 1
        return True


@dataclass(frozen=True)
class ProxyEvent:
    at: float
    path: str
    text: str
    action: Action
    upstream_status: int | None
    upstream_body: bytes


@dataclass
class Request:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def text(self) -> str:
        """The query and form body, percent-decoded (to find a marker in a message)."""
        raw = self.target.partition("?")[2] + "&" + self.body.decode("ascii", errors="replace")
        return unquote_plus(raw, errors="replace")


class FaultProxy:
    def __init__(
        self, loop: BackgroundLoop, upstream_url: str, *, hang_s: float, seed: int = 0
    ) -> None:
        self._loop = loop
        self.upstream_url = upstream_url.rstrip("/")
        self.hang_s = hang_s
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.plan: list[Fault] = []
        self.hook: Callable[[], None] | None = None
        self.events: list[ProxyEvent] = []
        self._rng = random.Random(seed)
        self._client: httpx.AsyncClient | None = None
        self._server: asyncio.Server | None = None
        loop.run(self._start())

    def set_plan(self, *faults: Fault, hook: Callable[[], None] | None = None) -> None:
        """Replace the plan (no argument: forward everything untouched)."""
        self.plan = list(faults)
        self.hook = hook

    def close(self) -> None:
        self._loop.run(self._stop())

    async def _start(self) -> None:
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(120, connect=5), limits=httpx.Limits(max_connections=64)
        )
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._client is not None:
            await self._client.aclose()

    def _choose(self, request: Request) -> Fault | None:
        for fault in self.plan:
            if fault.matches(request) and fault.draw(self._rng):
                return fault
        return None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (request := await read_request(reader)) is not None:
                if not await self._handle(request, writer):
                    return
        except (OSError, asyncio.IncompleteReadError, ValueError, httpx.HTTPError):
            pass  # the client went away, or the sandbox did: the connection is simply closed
        finally:
            with contextlib.suppress(OSError):
                writer.close()

    async def _handle(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection is finished with."""
        fault = self._choose(request)
        action: Action = "pass" if fault is None else fault.action
        if action in ("502_before", "reset_before"):
            self._record(request, action, None, b"")
            if action == "reset_before":
                reset(writer)
                return False
            await write_response(writer, 502, [("Content-Type", "text/html")], HTML_PAGE)
            return True
        status, headers, body = await self._forward(request)
        if fault is not None and fault.spare(body):
            action = "pass"
        self._record(request, action, status, body)
        match action:
            case "pass":
                await write_response(writer, status, headers, body)
            case "502_after":
                await write_response(writer, 502, [("Content-Type", "text/html")], HTML_PAGE)
            case "html_after":
                await write_response(writer, 200, [("Content-Type", "text/html")], HTML_PAGE)
            case "truncated_after":
                await write_response(writer, status, headers, body[: len(body) // 2])
            case "misencoded_after":
                gbk = body.decode("utf-8", errors="replace").encode("gbk", errors="replace")
                await write_response(writer, status, headers, gbk)
            case "hang_after":
                await asyncio.sleep(self.hang_s)
                return False
            case "reset_after":
                reset(writer)
                return False
            case "kill_after":
                await self._call_hook()
                reset(writer)
                return False
            case "call_after":
                await self._call_hook()
                await write_response(writer, status, headers, body)
        return True

    async def _call_hook(self) -> None:
        if self.hook is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.hook)

    async def _forward(self, request: Request) -> tuple[int, list[tuple[str, str]], bytes]:
        assert self._client is not None
        headers = [(k, v) for k, v in request.headers if k.lower() not in HOP_BY_HOP]
        response = await self._client.request(
            request.method,
            self.upstream_url + request.target,
            headers=headers,
            content=request.body,
        )
        kept = [
            (k, v)
            for k, v in response.headers.multi_items()
            if k.lower() not in HOP_BY_HOP and k.lower() != "content-encoding"
        ]
        return response.status_code, kept, response.content

    def _record(self, request: Request, action: Action, status: int | None, body: bytes) -> None:
        self.events.append(
            ProxyEvent(time.time(), request.path, request.text, action, status, body[:65536])
        )


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """One HTTP/1.1 request with a Content-Length body (what httpx sends); None at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers = [tuple(line.split(":", 1)) for line in lines[1:] if ":" in line]
    pairs = [(k.strip(), v.strip()) for k, v in headers]
    length = next((int(v) for k, v in pairs if k.lower() == "content-length"), 0)
    body = await reader.readexactly(length) if length else b""
    return Request(method, target, pairs, body)


async def write_response(
    writer: asyncio.StreamWriter, status: int, headers: list[tuple[str, str]], body: bytes
) -> None:
    lines = [f"HTTP/1.1 {status} {httpx.codes.get_reason_phrase(status) or 'Status'}"]
    lines += [f"{k}: {v}" for k, v in headers]
    lines.append(f"Content-Length: {len(body)}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()
