"""The push pipeline under load: bounded concurrency, nothing dropped, and retries that count
only what the receiver did."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.sandbox.conftest import PUSH_URL, VEESING, MakeSandbox, Sandbox
from worker.sandbox.app import create_app
from worker.sandbox.config import SandboxConfig

SEND = "/smsApi/group"
CONTENT = "【签名】你好"
Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


def phones(start: int, count: int) -> str:
    return ",".join(f"139{n:08d}" for n in range(start, start + count))


@pytest.fixture
def serve() -> Iterator[Callable[..., TestClient]]:
    """An in-process sandbox whose pushes go to `handler`."""
    clients: list[TestClient] = []

    def make(handler: Handler, **overrides: Any) -> TestClient:
        settings: dict[str, Any] = {
            "push_delay_s": 0,
            "push_retry_s": 0.01,
            "minute_rule_s": 0,
            "veesing_sms_push_url": PUSH_URL,
            "chuangrui_report_url": PUSH_URL,
            "seed": 3,
        }
        settings.update(overrides)
        app = create_app(SandboxConfig(**settings), push_transport=httpx.MockTransport(handler))
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def wait_summary(client: TestClient, done: int, timeout_s: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        summary: dict[str, Any] = client.get("/_sandbox/pushes/summary").json()
        if summary["pending"] == 0 and summary["delivered"] + summary["given_up"] >= done:
            return summary
        time.sleep(0.02)
    raise AssertionError(f"pushes not finished: {client.get('/_sandbox/pushes/summary').json()}")


@pytest.mark.parametrize("push_thread", [True, False])
def test_a_flood_of_receipts_is_delivered_with_at_most_push_workers_in_flight(
    serve: Callable[..., TestClient], push_thread: bool
) -> None:
    in_flight, most = 0, 0

    async def slow_receiver(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.002)
        in_flight -= 1
        return httpx.Response(200)

    client = serve(slow_receiver, push_workers=3, push_thread=push_thread)
    for batch in range(6):
        form = {**VEESING, "phone": phones(batch * 100, 100), "content": CONTENT}
        assert client.post(SEND, data=form).json()["returnStatus"] == "1 "

    summary = wait_summary(client, 600)

    assert summary == {"pending": 0, "delivered": 600, "given_up": 0, "workers": 3}
    assert most <= 3
    receipts = client.get("/_sandbox/pushes").json()["done"]
    assert sorted(r["fields"]["mobile"] for r in receipts) == sorted(phones(0, 600).split(","))


def test_a_client_side_pool_timeout_is_retried_and_not_counted_as_a_try(
    serve: Callable[..., TestClient],
) -> None:
    calls = 0

    async def pool_short_then_fine(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls <= 3:
            raise httpx.PoolTimeout("no free connection")
        return httpx.Response(200)

    client = serve(pool_short_then_fine, push_attempts=1)
    form = {**VEESING, "phone": "15080929435", "content": CONTENT}
    client.post(SEND, data=form).raise_for_status()

    assert wait_summary(client, 1)["delivered"] == 1
    [push] = client.get("/_sandbox/pushes").json()["done"]
    assert (push["result"], push["attempts"]) == ("delivered", 1)


def test_a_receiver_that_keeps_failing_is_given_up_after_the_configured_tries(
    serve: Callable[..., TestClient],
) -> None:
    tries = 0

    async def broken(request: httpx.Request) -> httpx.Response:
        nonlocal tries
        tries += 1
        if tries % 2:
            raise httpx.ConnectError("refused")
        return httpx.Response(502)

    client = serve(broken, push_attempts=3)
    form = {**VEESING, "phone": "15080929435", "content": CONTENT}
    client.post(SEND, data=form).raise_for_status()

    summary = wait_summary(client, 1)

    assert (summary["delivered"], summary["given_up"]) == (0, 1)
    [push] = client.get("/_sandbox/pushes").json()["done"]
    assert (push["result"], push["attempts"]) == ("given_up", 3)
    assert push["error"] == "ConnectError: refused"
    assert tries == 3


def test_reset_forgets_the_pushes_not_yet_due(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(push_delay_s=3600)
    sandbox.json(SEND, {**VEESING, "phone": phones(0, 5), "content": CONTENT})
    assert sandbox.client.get("/_sandbox/pushes/summary").json()["pending"] == 5

    sandbox.client.post("/_sandbox/reset").raise_for_status()

    summary = sandbox.client.get("/_sandbox/pushes/summary").json()
    assert (summary["pending"], summary["delivered"]) == (0, 0)
    assert sandbox.client.get("/_sandbox/pushes").json() == {"pending": 0, "done": []}


def test_chuangrui_still_reports_one_push_per_state(sandbox: Sandbox) -> None:
    sandbox.state(undeliverable=["13900000001", "13900000003"])
    form = {
        "name": "sandbox-name",
        "pwd": "sandbox-pwd",
        "type": "pt",
        "sign": "签名",
        "content": "你好",
        "mobile": phones(0, 5),
    }
    sandbox.text("/chuangrui/sms", form)

    pushes = sandbox.wait_pushes(2)

    mobiles = {p["fields"]["state"]: p["fields"]["mobile"].split(",") for p in pushes}
    assert mobiles["DELIVRD"] == ["13900000000", "13900000002", "13900000004"]
    assert sorted(m for state, ms in mobiles.items() if state != "DELIVRD" for m in ms) == [
        "13900000001",
        "13900000003",
    ]


def test_the_send_summary_counts_every_number_and_names_those_sent_twice(
    make_sandbox: MakeSandbox,
) -> None:
    sandbox = make_sandbox(minute_rule_s=0, memory_log_limit=50)
    sandbox.json(SEND, {**VEESING, "phone": phones(0, 100), "content": CONTENT})
    sandbox.json(SEND, {**VEESING, "phone": phones(99, 2), "content": CONTENT})
    form = {"name": "sandbox-name", "pwd": "sandbox-pwd", "type": "pt", "sign": "签名"}
    sandbox.text("/chuangrui/sms", {**form, "content": "你好", "mobile": phones(500, 3)})

    summary = sandbox.client.get("/_sandbox/log/summary").json()

    assert summary == {
        "sends": 105,
        "numbers": 104,
        "repeated": 1,
        "repeated_numbers": {"13900000099": 2},
        "by_product": {"veesing/sms": 102, "chuangrui/sms": 3},
    }
    assert len(sandbox.log()) == 50  # the in-memory log is bounded, the summary is not
    sandbox.client.post("/_sandbox/reset").raise_for_status()
    assert sandbox.client.get("/_sandbox/log/summary").json()["sends"] == 0


def test_the_log_file_has_one_line_per_phone(make_sandbox: MakeSandbox, tmp_path: Path) -> None:
    path = tmp_path / "sends.jsonl"
    sandbox = make_sandbox(log_file=path)
    sandbox.json(SEND, {**VEESING, "phone": phones(0, 100), "content": CONTENT})
    sandbox.json(SEND, {**VEESING, "phone": phones(100, 1), "content": CONTENT})

    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]

    assert [line["phone"] for line in lines] == phones(0, 101).split(",")
    assert lines == sandbox.log()
