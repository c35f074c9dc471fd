"""Bodies over HERALD_MAX_BODY_BYTES are refused (413) before they are read
(worker/api/body_limit.py); the largest MMS a vendor takes still fits."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select
from starlette.types import Message, Receive, Scope, Send

from worker.api import api
from worker.api.body_limit import BodySizeLimit
from worker.mms import VEESING_MAX_BYTES, VEESING_MAX_FRAMES
from worker.settings import get_settings
from worker.store import Job, session_scope

TEN_MB = 10 * 1024 * 1024
CHUNK = 64 * 1024


class Upload:
    """A client sending a 10 MB body in 64 KB chunks; counts what the server pulled."""

    def __init__(self, total: int = TEN_MB) -> None:
        self.total = total
        self.pulled = 0

    async def receive(self) -> Message:
        size = min(CHUNK, self.total - self.pulled)
        self.pulled += size
        return {"type": "http.request", "body": b"x" * size, "more_body": self.pulled < self.total}


async def reading_app(scope: Scope, receive: Receive, send: Send) -> None:
    """An application that reads the whole body, as FastAPI does, then answers 200."""
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"read"})


def call(headers: list[tuple[bytes, bytes]], upload: Upload) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": "http", "method": "POST", "path": "/v1/sms", "headers": headers}
    middleware = BodySizeLimit(reading_app, max_bytes=lambda: 256 * 1024)
    asyncio.run(middleware(scope, upload.receive, send))
    return sent


def test_a_10_mb_body_with_its_length_is_refused_without_reading_any_of_it() -> None:
    upload = Upload()

    sent = call([(b"content-length", str(TEN_MB).encode())], upload)

    assert sent[0]["status"] == 413
    assert upload.pulled == 0


def test_a_chunked_10_mb_body_is_read_only_until_it_passes_the_limit() -> None:
    upload = Upload()

    sent = call([(b"transfer-encoding", b"chunked")], upload)

    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [413]
    assert upload.pulled <= 256 * 1024 + CHUNK


def test_a_body_under_the_limit_reaches_the_application() -> None:
    upload = Upload(total=100 * 1024)

    sent = call([(b"content-length", str(upload.total).encode())], upload)

    assert sent[0]["status"] == 200
    assert upload.pulled == upload.total


@pytest.fixture
def client(store_url: str, redis_url: str) -> Iterator[TestClient]:
    with TestClient(api) as test_client:
        yield test_client


def largest_veesing_mms() -> dict[str, object]:
    """15 frames and 80 KB of GIFs: the most Veesing takes (≈ 110 KB as base64 in JSON)."""
    per_frame = (VEESING_MAX_BYTES - VEESING_MAX_FRAMES * 2) // VEESING_MAX_FRAMES
    gif = base64.b64encode(b"GIF89a" + b"\x00" * (per_frame - 6)).decode()
    frames = [
        {"seconds": 5, "text": "帧", "media": {"type": "gif", "base64": gif}}
        for _ in range(VEESING_MAX_FRAMES)
    ]
    return {"to": ["13800138000"], "title": "双十一", "frames": frames}


def test_the_largest_mms_a_vendor_takes_fits_under_the_default_limit(client: TestClient) -> None:
    response = client.post("/v1/mms", json=largest_veesing_mms())

    assert response.status_code == 202, response.text
    assert len(response.request.content) > 100 * 1024
    assert len(response.request.content) < get_settings().max_body_bytes


def test_the_api_answers_413_to_a_body_over_the_limit_and_stores_nothing(
    client: TestClient,
) -> None:
    body = b'{"to": ["13800138000"], "content": "' + b"x" * TEN_MB + b'"}'

    response = client.post("/v1/sms", content=body, headers={"content-type": "application/json"})

    assert response.status_code == 413
    with session_scope() as session:
        assert session.exec(select(Job)).all() == []


def test_the_api_answers_413_to_a_chunked_body_that_passes_the_limit(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"to": ["13800138000"], "content": "'
        for _ in range(TEN_MB // CHUNK):
            yield b"x" * CHUNK

    response = client.post(
        "/v1/sms", content=chunks(), headers={"content-type": "application/json"}
    )

    assert response.status_code == 413
    assert "content-length" not in response.request.headers
