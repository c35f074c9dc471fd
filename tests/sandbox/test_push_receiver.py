"""The push pipeline's own HTTP client (aiohttp) against a real socket server: the answers a
receiver may give (by length, chunked, to the end of the connection), connections the receiver
closes, a receiver that does not answer, and no receiver at all."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from worker.sandbox.config import SandboxConfig
from worker.sandbox.pushes import PushSender
from worker.sandbox.state import SandboxState

Answer = Callable[[int], Awaitable[bytes | None]]
"""What the server writes for the request numbered from 1; None closes the connection without
an answer. The server closes the connection after an answer that says `Connection: close`, or
after every answer when told to (`close_after_answer`)."""

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@asynccontextmanager
async def receiver(
    answer: Answer, close_after_answer: bool = False
) -> AsyncIterator[tuple[str, list[bytes], list[int]]]:
    """A raw HTTP/1.1 server: the URL, the request bodies it read, one entry per connection."""
    bodies: list[bytes] = []
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(len(connections) + 1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                bodies.append(await reader.readexactly(length))
                reply = await answer(len(bodies))
                if reply is None:
                    break
                writer.write(reply)
                await writer.drain()
                if close_after_answer or b"Connection: close" in reply:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}/push/token", bodies, connections


def sender(**overrides: Any) -> tuple[PushSender, SandboxState]:
    """The push pipeline on its own thread (the default), one worker: pushes go in order."""
    settings: dict[str, Any] = {"push_retry_s": 0.01, "push_workers": 1, "seed": 1}
    settings.update(overrides)
    config = SandboxConfig(**settings)
    state = SandboxState(config)
    return PushSender(config, state), state


async def finished(
    pushes: PushSender, state: SandboxState, count: int, timeout_s: float = 10.0
) -> list[Any]:
    """The push log once `count` pushes are delivered or given up and none is pending."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        summary = pushes.summary()
        if summary["pending"] == 0 and summary["delivered"] + summary["given_up"] >= count:
            return list(state.pushes.entries)
        await asyncio.sleep(0.01)
    raise AssertionError(f"pushes not finished: {pushes.summary()}")


def outcomes(log: list[Any]) -> list[tuple[str, str, int, str]]:
    return [(p["fields"]["n"], p["result"], p["attempts"], p["error"]) for p in log]


def test_answers_by_length_chunks_and_to_the_end_and_a_500_that_closes() -> None:
    replies = [
        OK,
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n",
        b"HTTP/1.1 500 Oops\r\nConnection: close\r\n\r\nbroken",
        b"HTTP/1.1 202 Accepted\r\nConnection: close\r\n\r\nread to the end",
    ]

    async def answer(number: int) -> bytes | None:
        return replies[number - 1]

    async def scenario() -> None:
        async with receiver(answer) as (url, bodies, connections):
            pushes, state = sender(push_attempts=2)
            for n in "123":
                pushes.schedule("receipt", url, {"n": n}, delay_s=0)
            log = await finished(pushes, state, 3)
            await pushes.close()
        assert outcomes(log) == [
            ("1", "delivered", 1, ""),
            ("2", "delivered", 1, ""),
            ("3", "delivered", 2, ""),
        ]
        assert bodies == [b"n=1", b"n=2", b"n=3", b"n=3"]
        assert len(connections) == 2  # kept alive until the receiver said close

    asyncio.run(scenario())


def test_a_kept_alive_connection_the_receiver_closed_while_idle_is_reopened_not_a_try() -> None:
    async def answer(number: int) -> bytes | None:
        return OK

    async def scenario() -> None:
        async with receiver(answer, close_after_answer=True) as (url, bodies, connections):
            pushes, state = sender(push_attempts=1)
            pushes.schedule("receipt", url, {"n": "1"}, delay_s=0)
            pushes.schedule("receipt", url, {"n": "2"}, delay_s=0.3)
            log = await finished(pushes, state, 2)
            await pushes.close()
        assert outcomes(log) == [("1", "delivered", 1, ""), ("2", "delivered", 1, "")]
        assert bodies == [b"n=1", b"n=2"]
        assert len(connections) == 2

    asyncio.run(scenario())


def test_a_receiver_that_closes_without_answering_is_a_try() -> None:
    async def answer(number: int) -> bytes | None:
        return None if number == 1 else OK

    async def scenario() -> None:
        async with receiver(answer) as (url, bodies, connections):
            pushes, state = sender(push_attempts=2)
            pushes.schedule("receipt", url, {"n": "1"}, delay_s=0)
            log = await finished(pushes, state, 1)
            await pushes.close()
        assert outcomes(log) == [("1", "delivered", 2, "")]
        assert bodies == [b"n=1", b"n=1"]
        assert len(connections) == 2

    asyncio.run(scenario())


def test_a_receiver_that_never_answers_is_given_up_after_the_timeout() -> None:
    async def answer(number: int) -> bytes | None:
        await asyncio.sleep(30)
        return None

    async def scenario() -> None:
        async with receiver(answer) as (url, bodies, _):
            pushes, state = sender(push_attempts=2, push_timeout_s=0.2)
            pushes.schedule("receipt", url, {"n": "1"}, delay_s=0)
            [push] = await finished(pushes, state, 1)
            await pushes.close()
        assert (push["result"], push["attempts"]) == ("given_up", 2)
        assert "Timeout" in push["error"]
        assert bodies == [b"n=1", b"n=1"]

    asyncio.run(scenario())


def test_no_receiver_is_a_try_each_time() -> None:
    async def answer(number: int) -> bytes | None:
        return OK

    async def scenario() -> None:
        async with receiver(answer) as (url, _, _):
            closed = url
        pushes, state = sender(push_attempts=3)
        pushes.schedule("receipt", closed, {"n": "1"}, delay_s=0)
        [push] = await finished(pushes, state, 1)
        await pushes.close()
        assert (push["result"], push["attempts"]) == ("given_up", 3)
        assert push["error"].startswith("ClientConnectorError: ")

    asyncio.run(scenario())
