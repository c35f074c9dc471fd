"""Requests to the API as many producers (or a vendor) would make them: closed loop (a fixed
number in flight) and open loop (sent on a timetable whatever the answers take)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

TIMEOUT_S = 120.0


@dataclass
class Answers:
    """What the requests got back: how many of each status, and when the last one came."""

    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    last_answer: float = 0.0

    def note(self, status: int | None) -> None:
        if status is None:
            self.errors += 1
        else:
            self.statuses[status] = self.statuses.get(status, 0) + 1
        self.last_answer = time.monotonic()

    def ok(self, status: int) -> int:
        return self.statuses.get(status, 0)

    def summary(self) -> str:
        parts = [f"{n:,}×HTTP {status}" for status, n in sorted(self.statuses.items())]
        if self.errors:
            parts.append(f"{self.errors:,} without an answer")
        return ", ".join(parts)


async def _post(
    client: httpx.AsyncClient, url: str, kwargs: dict[str, Any], answers: Answers
) -> None:
    try:
        response = await client.post(url, **kwargs)
    except httpx.HTTPError:
        answers.note(None)
    else:
        answers.note(response.status_code)


def post_closed_loop(url: str, requests: Sequence[dict[str, Any]], *, in_flight: int) -> Answers:
    """POST each of `requests` (httpx keyword arguments: json=, data=) with `in_flight` at a
    time."""
    answers = Answers()

    async def run() -> None:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for request in requests:
            queue.put_nowait(request)
        limits = httpx.Limits(max_connections=in_flight)
        async with httpx.AsyncClient(timeout=TIMEOUT_S, limits=limits) as client:

            async def producer() -> None:
                while not queue.empty():
                    await _post(client, url, queue.get_nowait(), answers)

            await asyncio.gather(*(producer() for _ in range(in_flight)))

    asyncio.run(run())
    return answers


def post_open_loop(url: str, requests: Sequence[dict[str, Any]], *, per_second: float) -> Answers:
    """POST `requests` at `per_second`, each on its own schedule, however long answers take."""
    answers = Answers()

    async def run() -> None:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
        async with httpx.AsyncClient(timeout=TIMEOUT_S, limits=limits) as client:
            started = time.monotonic()
            tasks = []
            for index, request in enumerate(requests):
                delay = started + index / per_second - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(_post(client, url, request, answers)))
            await asyncio.gather(*tasks)

    asyncio.run(run())
    return answers
