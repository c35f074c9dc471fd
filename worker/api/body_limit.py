"""Request bodies over HERALD_MAX_BODY_BYTES are refused (413) before they are read.

A pure ASGI middleware: a `Content-Length` over the limit is answered at once, without reading
the body; a body without one (chunked) is read only until it passes the limit. The default
(4 MiB) holds a job of HERALD_MAX_RECIPIENTS' default 100,000 numbers even written as
`+86 138 0013 8000` (≈ 2.1 MB of JSON), and the largest MMS a vendor takes (15 frames, 80 KB,
≈ 110 KB as base64 in JSON).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from worker.settings import get_settings

TOO_LARGE_BODY = b'{"detail":"request body too large"}'


class BodyTooLarge(Exception):
    """Raised to the application when a chunked body passes the limit while it reads it."""


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: Callable[[], int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes or (lambda: get_settings().max_body_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes()
        declared = content_length(scope)
        if declared is not None and declared > limit:
            await refuse(send)
            return
        received = 0
        too_large = False
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if too_large:  # the application's answer to a body it could not read is ours: 413
                if message["type"] == "http.response.start" and not response_started:
                    response_started = True
                    await refuse(send)
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            pass
        except Exception:
            if not too_large:
                raise
        if too_large and not response_started:
            await refuse(send)


def content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def refuse(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(TOO_LARGE_BODY)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": TOO_LARGE_BODY})
