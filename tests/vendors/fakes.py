"""A fake vendor for adapter unit tests: an `httpx.MockTransport` handler that answers canned
bodies and keeps every request it saw, injected through the adapter's `httpx.Client`."""

from __future__ import annotations

from urllib.parse import parse_qs

import httpx


class FakeVendor:
    """Answers each request with the next canned reply (the last one repeats)."""

    def __init__(self, *replies: str | bytes | httpx.Response) -> None:
        self.replies = list(replies) or [b""]
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies[min(len(self.requests), len(self.replies)) - 1]
        if isinstance(reply, httpx.Response):
            return reply
        content = reply.encode("utf-8") if isinstance(reply, str) else reply
        return httpx.Response(200, content=content)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def form(self, index: int = -1) -> dict[str, str]:
        """The form fields of a request, decoded once, as the vendor's server reads them."""
        body = self.requests[index].content.decode("ascii")
        return {key: values[0] for key, values in parse_qs(body, keep_blank_values=True).items()}
