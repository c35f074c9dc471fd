"""The pushes' own HTTP/1.1 transport, against a real socket server: the answers a receiver may
give (by length, chunked, to the end), kept-alive connections the receiver closed, and a
receiver that does not answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from worker.sandbox.push_transport import PushTransport

Answer = Callable[[bytes, int], Awaitable[bytes | None]]
"""What the server writes for (request body, request number); None closes the connection
instead, and so does an answer that says `Connection: close`."""


@asynccontextmanager
async def server(answer: Answer) -> AsyncIterator[tuple[str, list[bytes], list[int]]]:
    bodies: list[bytes] = []
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                bodies.append(await reader.readexactly(length))
                reply = await answer(bodies[-1], len(bodies))
                if reply is None:
                    break
                writer.write(reply)
                await writer.drain()
                if b"Connection: close" in reply:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    listening = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    async with listening:
        yield f"http://127.0.0.1:{port}/push/token", bodies, connections


def fallback() -> httpx.AsyncBaseTransport:
    return httpx.AsyncHTTPTransport()


async def post(transport: PushTransport, url: str, body: bytes) -> httpx.Response:
    request = httpx.Request("POST", url, content=body, headers={"Content-Type": "text/plain"})
    reply = await transport.handle_async_request(request)
    await reply.aread()
    return reply


def test_answers_by_length_chunks_and_to_the_end() -> None:
    replies = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n",
        b"HTTP/1.1 500 Oops\r\nConnection: close\r\n\r\nbroken",
    ]

    async def answer(body: bytes, number: int) -> bytes | None:
        return replies[number - 1]

    async def scenario() -> None:
        async with server(answer) as (url, bodies, connections):
            transport = PushTransport(2.0, fallback())
            first = await post(transport, url, b"mobile=1")
            second = await post(transport, url, b"mobile=2")
            third = await post(transport, url, b"mobile=3")
            await transport.aclose()
            assert [(r.status_code, r.content) for r in (first, second, third)] == [
                (200, b"ok"),
                (201, b"abc"),
                (500, b"broken"),
            ]
            assert bodies == [b"mobile=1", b"mobile=2", b"mobile=3"]
            assert len(connections) == 1  # kept alive until the receiver said close

    asyncio.run(scenario())


def test_a_kept_alive_connection_the_receiver_closed_is_reopened_not_a_failure() -> None:
    async def answer(body: bytes, number: int) -> bytes | None:
        return b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" if number != 2 else None

    async def scenario() -> None:
        async with server(answer) as (url, bodies, connections):
            transport = PushTransport(2.0, fallback())
            assert (await post(transport, url, b"a")).status_code == 200
            assert (await post(transport, url, b"b")).status_code == 200
            await transport.aclose()
            assert bodies == [b"a", b"b", b"b"]
            assert len(connections) == 2

    asyncio.run(scenario())


def test_a_receiver_that_does_not_answer_is_a_read_timeout() -> None:
    async def answer(body: bytes, number: int) -> bytes | None:
        await asyncio.sleep(5)
        return None

    async def scenario() -> None:
        async with server(answer) as (url, _, _):
            transport = PushTransport(0.2, fallback())
            with pytest.raises(httpx.ReadTimeout):
                await post(transport, url, b"a")
            await transport.aclose()

    asyncio.run(scenario())


def test_no_receiver_is_a_connect_error() -> None:
    async def scenario() -> None:
        async with server(lambda body, number: asyncio.sleep(0, None)) as (url, _, _):
            closed_port = url
        transport = PushTransport(1.0, fallback())
        with pytest.raises(httpx.ConnectError):
            await post(transport, closed_port, b"a")
        await transport.aclose()

    asyncio.run(scenario())
