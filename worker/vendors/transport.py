"""One HTTP exchange with a vendor, its failures translated once into herald's error classes.

Adapters call `exchange`; nothing above the vendor modules ever sees an `httpx` exception.
What decides the class is whether the request can have reached the vendor:

- it never left (connect error, connect/pool timeout) or the vendor said "not now" (429, 503):
  `TransientError`, safe to send again;
- it may have been taken (read/write timeout, dropped connection, any 5xx but 503, such as a
  gateway's 500/502/504 page): `AmbiguousOutcome`;
- the vendor refused who we are (401/403) or the address is wrong (404, 405): `VendorBlocked`;
- any other non-2xx status: `UnknownReply`, retried on a small budget.

A 2xx body is the adapter's to read; one it cannot read at all is `UnreadableReply`, ambiguous
too (docs/vendors.md, "Shared rules").
"""

from __future__ import annotations

import math

import httpx

from worker.errors import AmbiguousOutcome, TransientError, UnknownReply, VendorBlocked

NOT_SENT_EXCEPTIONS: tuple[type[httpx.HTTPError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
)
AMBIGUOUS_EXCEPTIONS: tuple[type[httpx.HTTPError], ...] = (
    httpx.ReadTimeout,
    httpx.WriteTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
    httpx.ProxyError,
)
RETRY_STATUSES = frozenset({429, 503})
BLOCKED_STATUSES = frozenset({401, 403, 404, 405})
RETRY_AFTER_MAX_S = 86_400.0


def exchange(
    client: httpx.Client,
    vendor: str,
    method: str,
    url: str,
    *,
    params: dict[str, str] | None = None,
    data: dict[str, str] | None = None,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """Send one request and return a 2xx response, or raise the matching `VendorError`.

    The error text names the failure and the path, never the query string or body, which may
    carry credentials.
    """
    request = client.build_request(
        method, url, params=params, data=data, content=content, headers=headers
    )
    where = f"{request.method} {request.url.path}"
    try:
        response = client.send(request)
    except NOT_SENT_EXCEPTIONS as exc:
        raise TransientError(vendor, f"{type(exc).__name__} on {where}") from None
    except AMBIGUOUS_EXCEPTIONS as exc:
        raise AmbiguousOutcome(vendor, f"{type(exc).__name__} on {where}") from None
    except httpx.HTTPError as exc:
        raise AmbiguousOutcome(vendor, f"{type(exc).__name__} on {where}") from None
    status = response.status_code
    if 200 <= status < 300:
        return response
    summary = f"HTTP {status} on {where}"
    if status in RETRY_STATUSES:
        raise TransientError(vendor, summary, retry_after_s=retry_after_s(response))
    if 500 <= status < 600:
        raise AmbiguousOutcome(vendor, summary)
    if status in BLOCKED_STATUSES:
        raise VendorBlocked(vendor, summary)
    raise UnknownReply(vendor, summary)


def retry_after_s(response: httpx.Response) -> float | None:
    """The vendor's Retry-After in seconds, when it sent one as a number, at most a day
    (`inf`, or 1e300 seconds, is no wait a task can be scheduled for)."""
    value = response.headers.get("retry-after", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        return None
    if not math.isfinite(seconds):
        return None
    return min(max(0.0, seconds), RETRY_AFTER_MAX_S)
