"""The HTTP clients that carry the pushes, each answering one question per push: did the receiver
take it, did it fail (and how), or did the client fail before reaching it.

`AiohttpPushClient` is the sandbox's own: aiohttp's client, whose per-request CPU cost lets the
sandbox push receipts about as fast as it accepts sends (httpx's async client cost about 1.2 ms
of CPU per push on the project's 2-core machine). `TransportPushClient` serves a test that
injects an `httpx.AsyncBaseTransport` (an `httpx.MockTransport`) to receive the pushes
in-process.
"""

from __future__ import annotations

from typing import Protocol

import aiohttp
import httpx
from yarl import URL

DELIVERED = None
"""What `post` returns when the receiver answered 2xx."""
CLIENT_FAILED = ""
"""What `post` returns when the client failed before the receiver was reached (not a try)."""


class PushClient(Protocol):
    async def post(self, url: str, body: bytes, content_type: str) -> str | None:
        """`DELIVERED`, `CLIENT_FAILED`, or what the receiver did wrong (a try)."""
        ...

    async def close(self) -> None: ...


class AiohttpPushClient:
    """One session whose connector holds one kept-alive connection per push worker.

    Each worker posts one push at a time and reads its answer before taking the next, so a
    connector of `workers` connections never makes a push wait for one: the timeout bounds the
    connection to the receiver (`sock_connect`) and each wait for its answer (`sock_read`), never
    a wait for the pool. Every failure here is therefore the receiver's: no connection, no answer
    in time, a connection closed or an answer malformed.
    """

    def __init__(self, workers: int, timeout_s: float) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=workers, limit_per_host=0),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout_s, sock_read=timeout_s),
            auto_decompress=False,
        )
        self._urls: dict[str, URL] = {}
        """Each push URL parsed once, as httpx's URLs were: parsing is a share of a push's cost."""

    async def post(self, url: str, body: bytes, content_type: str) -> str | None:
        parsed = self._urls.get(url)
        if parsed is None:
            parsed = self._urls[url] = URL(url)
        try:
            async with self._session.post(
                parsed, data=body, headers={"Content-Type": content_type}
            ) as reply:
                await reply.read()
                status = reply.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            return _described(exc)
        return DELIVERED if 200 <= status < 300 else f"HTTP {status}"

    async def close(self) -> None:
        await self._session.close()


class TransportPushClient:
    """Pushes through an injected httpx transport, shared by every worker.

    A `PoolTimeout` (httpx's pool had no free connection) says nothing about the receiver, so it
    is `CLIENT_FAILED`, not a try.
    """

    def __init__(self, transport: httpx.AsyncBaseTransport, timeout_s: float) -> None:
        self._transport = transport
        self._extensions = {"timeout": httpx.Timeout(timeout_s).as_dict()}

    async def post(self, url: str, body: bytes, content_type: str) -> str | None:
        request = httpx.Request(
            "POST",
            url,
            content=body,
            headers={"Content-Type": content_type},
            extensions=self._extensions,
        )
        try:
            reply = await self._transport.handle_async_request(request)
            try:
                await reply.aread()
            finally:
                await reply.aclose()
        except httpx.PoolTimeout:
            return CLIENT_FAILED
        except httpx.HTTPError as exc:
            return _described(exc)
        return DELIVERED if reply.is_success else f"HTTP {reply.status_code}"

    async def close(self) -> None:
        await self._transport.aclose()


def _described(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
