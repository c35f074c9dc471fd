"""Fixtures for the sandbox's unit tests: an in-process app and a push receiver."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from fastapi.testclient import TestClient

from worker.sandbox.app import create_app
from worker.sandbox.config import SandboxConfig

VEESING = {"appId": "sandbox-app-id", "appKey": "sandbox-app-key"}
PUSH_URL = "http://receiver.test/push"


@dataclass
class Receiver:
    """Collects the pushes; answers `fail_first` of them with HTTP 500 first."""

    fail_first: int = 0
    seen: list[httpx.Request] = field(default_factory=list)
    accepted: list[httpx.Request] = field(default_factory=list)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.seen.append(request)
        if len(self.seen) <= self.fail_first:
            return httpx.Response(500)
        self.accepted.append(request)
        return httpx.Response(200, text="ok")

    def forms(self, encoding: str = "utf-8") -> list[dict[str, str]]:
        return [
            dict(parse_qsl(r.content.decode("ascii"), keep_blank_values=True, encoding=encoding))
            for r in self.accepted
        ]


@dataclass
class Sandbox:
    client: TestClient
    receiver: Receiver

    def post(self, path: str, data: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        response: httpx.Response = self.client.post(path, data=data, **kwargs)
        return response

    def text(self, path: str, data: dict[str, str] | None = None) -> str:
        response = self.post(path, data)
        assert response.status_code == 200
        return response.content.decode("utf-8")

    def json(self, path: str, data: dict[str, str] | None = None) -> Any:
        response = self.post(path, data)
        assert response.status_code == 200
        return response.json()

    def wait_pushes(self, count: int, timeout_s: float = 5.0) -> list[dict[str, Any]]:
        """Wait until `count` pushes are finished (delivered or given up); return the log."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            done = self.client.get("/_sandbox/pushes").json()
            if len(done["done"]) >= count and done["pending"] == 0:
                return list(done["done"])
            time.sleep(0.02)
        raise AssertionError(f"pushes not finished: {self.client.get('/_sandbox/pushes').json()}")

    def log(self) -> list[dict[str, Any]]:
        return list(self.client.get("/_sandbox/log").json())

    def state(self, **update: Any) -> None:
        self.client.post("/_sandbox/state", json=update).raise_for_status()

    def faults(self, **faults: Any) -> None:
        self.client.post("/_sandbox/faults", json=faults).raise_for_status()


MakeSandbox = Callable[..., Sandbox]


@pytest.fixture
def make_sandbox() -> Iterator[MakeSandbox]:
    clients: list[TestClient] = []

    def make(fail_first: int = 0, **overrides: Any) -> Sandbox:
        settings: dict[str, Any] = {
            "push_delay_s": 0,
            "push_retry_s": 0.01,
            "mms_audit_delay_s": 0,
            "veesing_sms_push_url": PUSH_URL,
            "veesing_mms_push_url": PUSH_URL,
            "veesing_voice_push_url": PUSH_URL,
            "chuangrui_report_url": PUSH_URL,
            "chuangrui_mo_url": PUSH_URL,
            "seed": 7,
        }
        settings.update(overrides)
        receiver = Receiver(fail_first=fail_first)
        app = create_app(
            SandboxConfig(**settings), push_transport=httpx.MockTransport(receiver.handle)
        )
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return Sandbox(client, receiver)

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def sandbox(make_sandbox: MakeSandbox) -> Sandbox:
    return make_sandbox()
