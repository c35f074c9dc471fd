"""Unit tests of the transport edge: every httpx failure becomes the right herald error class.

What decides the class is whether the request can have reached the vendor: never left or
refused by the vendor → safe to send again; may have been taken → ambiguous.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from worker.errors import AmbiguousOutcome, TransientError, UnknownReply, VendorBlocked
from worker.vendors.transport import exchange

URL = "https://vendor.invalid/smsApi/group?appKey=SECRET"


def client(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(handler))


def raising(exc: type[httpx.TransportError]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc("boom", request=request)

    return handler


@pytest.mark.parametrize("exc", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
def test_a_request_that_never_left_is_safe_to_send_again(exc: type[httpx.TransportError]) -> None:
    with pytest.raises(TransientError) as caught:
        exchange(client(raising(exc)), "veesing", "POST", URL, data={"a": "b"})

    assert "SECRET" not in str(caught.value)


@pytest.mark.parametrize(
    "exc",
    [httpx.ReadTimeout, httpx.WriteTimeout, httpx.ReadError, httpx.RemoteProtocolError],
)
def test_a_request_that_may_have_arrived_is_ambiguous(exc: type[httpx.TransportError]) -> None:
    with pytest.raises(AmbiguousOutcome):
        exchange(client(raising(exc)), "veesing", "POST", URL)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (429, TransientError),
        (503, TransientError),
        (500, AmbiguousOutcome),
        (502, AmbiguousOutcome),
        (504, AmbiguousOutcome),
        (401, VendorBlocked),
        (403, VendorBlocked),
        (404, VendorBlocked),
        (418, UnknownReply),
    ],
)
def test_each_http_status_has_its_class(status: int, error: type[Exception]) -> None:
    with pytest.raises(error) as caught:
        exchange(client(lambda _r: httpx.Response(status)), "veesing", "POST", URL)

    assert f"HTTP {status} on POST /smsApi/group" in str(caught.value)
    assert "SECRET" not in str(caught.value)


def test_a_retry_after_header_is_kept_as_the_wait() -> None:
    reply = httpx.Response(503, headers={"Retry-After": "7"})

    with pytest.raises(TransientError) as caught:
        exchange(client(lambda _r: reply), "veesing", "POST", URL)

    assert caught.value.retry_after_s == 7.0


def test_a_refused_connection_to_a_closed_port_is_safe_to_send_again() -> None:
    with httpx.Client(timeout=2) as real, pytest.raises(TransientError, match="ConnectError"):
        exchange(real, "veesing", "POST", "http://127.0.0.1:1/smsApi/group")
