"""Integration: status webhooks from real worker processes to a real receiver process.

The receiver (`tests/integration/webhook_receiver.py`) records every POST as it came over the
wire; the test checks each signature itself, the way the README tells an application to, and
compares what arrived with the delivery events in the store: every status change a webhook
tells, for every recipient, in the order it happened. A receiver that is down, answers 500 or
hangs gets everything once it works again, and never holds up sending.

HERALD_WEBHOOK_TEST_DOWN_S sets how long the receiver stays down (default 3 s; 30 s for the
long variant: `HERALD_WEBHOOK_TEST_DOWN_S=30 pytest tests/integration/test_webhooks.py`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from tests.integration.conftest import System
from tests.support import PYTHON, Child, free_port, start_child, wait_http, wait_until
from worker.store import Delivery, DeliveryEvent
from worker.store.models import WebhookEndpoint

pytestmark = pytest.mark.integration

SECRET = "test-webhook-secret-0123456789"
BATCH = 50
SYSTEM_ENV = {
    "HERALD_WEBHOOK_SECRET": SECRET,
    "HERALD_WEBHOOK_INTERVAL_S": "0.2",
    "HERALD_WEBHOOK_BACKOFF_MAX_S": "1",
    "HERALD_WEBHOOK_TIMEOUT_S": "1",
    "HERALD_WEBHOOK_BATCH_SIZE": str(BATCH),
}
DOWN_S = float(os.environ.get("HERALD_WEBHOOK_TEST_DOWN_S", "3"))
TOLD = {"submitted", "delivered", "undelivered", "failed", "unknown", "cancelled"}
NUMBERS = (f"1770{n:07d}" for n in itertools.count())
RECEIVERS = itertools.count()


def numbers(count: int) -> list[str]:
    return [next(NUMBERS) for _ in range(count)]


class Receiver:
    """The receiver process on one port, started again on the same port after a stop."""

    def __init__(self, system: System) -> None:
        self.system = system
        self.port = free_port()
        self.name = f"receiver-{next(RECEIVERS)}"
        self.log = system.folder / f"{self.name}.jsonl"
        self.log.touch()
        self.url = f"http://127.0.0.1:{self.port}/hooks/herald"
        self.child: Child | None = None

    def start(self, mode: str = "ok") -> None:
        self.child = start_child(
            self.name,
            [
                PYTHON,
                "-m",
                "tests.integration.webhook_receiver",
                "--port",
                str(self.port),
                "--log",
                str(self.log),
                "--mode",
                mode,
            ],
            self.system.env,
            self.system.folder / "logs",
        )
        wait_http(f"http://127.0.0.1:{self.port}/_mode", self.child)

    def stop(self) -> None:
        if self.child is not None:
            self.child.kill_hard()

    def mode(self, mode: str) -> None:
        httpx.post(f"http://127.0.0.1:{self.port}/_mode", json={"mode": mode}, timeout=5)

    def requests(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def answered_ok(self) -> list[dict[str, Any]]:
        """The events of every POST answered 200, in the order they arrived, each checked."""
        return [e for r in self.requests() if r["mode"] == "ok" for e in verified(r)["events"]]


def verified(request: dict[str, Any]) -> dict[str, Any]:
    """The body of a recorded POST, once its `Herald-Signature` checks out (README's recipe)."""
    body = base64.b64decode(request["body"])
    fields = dict(part.split("=", 1) for part in request["signature"].split(","))
    expected = hmac.new(
        SECRET.encode(), fields["t"].encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(expected, fields["v1"]), "a webhook with a wrong signature"
    assert abs(time.time() - int(fields["t"])) < 300, "a webhook with a stale timestamp"
    return dict(json.loads(body))


@pytest.fixture
def receivers(system: System) -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for receiver in made:
        receiver.stop()


@pytest.fixture
def receiver(system: System, receivers: list[Receiver]) -> Receiver:
    made = Receiver(system)
    made.start()
    receivers.append(made)
    return made


def told_events(engine: Engine, job_ids: list[str]) -> dict[int, dict[str, Any]]:
    """The store's status changes a webhook tells, of these jobs, by event id."""
    with Session(engine) as session:
        rows = session.exec(
            select(DeliveryEvent, Delivery)
            .join(Delivery, col(Delivery.id) == col(DeliveryEvent.delivery_id))
            .where(col(Delivery.job_id).in_(job_ids))
            .order_by(col(DeliveryEvent.id))
        ).all()
    return {
        event.id: {
            "id": event.id,
            "job_id": delivery.job_id,
            "recipient_id": delivery.id,
            "phone": delivery.phone,
            "previous_status": event.from_status,
            "status": event.to_status,
        }
        for event, delivery in rows
        if event.id is not None and event.to_status in TOLD and event.from_status != event.to_status
    }


def wait_received(
    receiver: Receiver, expected: dict[int, dict[str, Any]], timeout_s: float = 60
) -> list[dict[str, Any]]:
    """Every expected event, once the receiver has answered 200 to each; what arrived."""
    wait_until(
        lambda: expected.keys() <= {e["id"] for e in receiver.answered_ok()},
        timeout_s=timeout_s,
        what=f"{len(expected)} status changes at {receiver.name}",
    )
    return receiver.answered_ok()


def assert_as_in_the_store(
    arrived: list[dict[str, Any]], expected: dict[int, dict[str, Any]]
) -> None:
    """Each arrived event says what the store says, and each recipient's changes arrived (first
    time each) in the order they happened."""
    firsts: dict[int, dict[str, Any]] = {}
    for event in arrived:
        firsts.setdefault(event["id"], event)
        if event["id"] in expected:
            assert {k: event[k] for k in expected[event["id"]]} == expected[event["id"]]
    by_recipient: dict[int, list[int]] = {}
    for event_id in firsts:
        if event_id in expected:
            by_recipient.setdefault(expected[event_id]["recipient_id"], []).append(event_id)
    for recipient_id, order in by_recipient.items():
        assert order == sorted(order), f"recipient {recipient_id} told out of order: {order}"
    assert expected.keys() <= firsts.keys()


def test_every_status_reaches_the_receiver_exactly_as_signed(
    system: System, engine: Engine, receiver: Receiver
) -> None:
    unknown, undelivered, suppressed, cancelled = numbers(4)
    delivered = numbers(3)
    system.sandbox(
        "POST", "/_sandbox/state", json={"account": "veesing_sms", "undeliverable": [undelivered]}
    )
    httpx.post(
        f"{system.api_url}/v1/suppressions",
        json={"phone": suppressed, "reason": "test: opted out"},
        headers=system.headers(),
        timeout=10,
    ).raise_for_status()
    sent = system.send_sms([*delivered, undelivered, suppressed], callback_url=receiver.url)
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    scheduled = system.send_sms([cancelled], callback_url=receiver.url, send_at=later)
    httpx.post(
        f"{system.api_url}/v1/messages/{scheduled}/cancel", headers=system.headers(), timeout=10
    ).raise_for_status()
    system.wait_settled([sent, scheduled], timeout_s=60)
    # The balances were read at start, so the next request to /smsApi is this send, not a
    # balance read that would take the fault.
    system.sandbox(
        "POST",
        "/_sandbox/faults",
        json={"error_rate": 1, "errors": ["refuse"], "paths": ["/smsApi"], "limit": 1},
    )
    ambiguous = system.send_sms([unknown], callback_url=receiver.url)
    system.wait_settled([ambiguous], timeout_s=60)
    system.sandbox("POST", "/_sandbox/faults", json={})
    jobs = system.wait_settled([ambiguous, sent, scheduled], timeout_s=10)

    expected = told_events(engine, [ambiguous, sent, scheduled])
    arrived = wait_received(receiver, expected)

    final = {r["phone"]: r["status"] for job in jobs for r in job["recipients"]}
    assert final == {
        unknown: "unknown",
        **dict.fromkeys(delivered, "delivered"),
        undelivered: "undelivered",
        suppressed: "failed",
        cancelled: "cancelled",
    }
    assert {e["status"] for e in arrived} == TOLD
    assert_as_in_the_store(arrived, expected)
    for event in arrived:
        assert event["type"] == "recipient.status"
        assert datetime.fromisoformat(event["at"]).tzinfo is not None
    assert all(r["path"] == "/hooks/herald" for r in receiver.requests())


def test_a_receiver_that_was_down_gets_everything_once_it_is_back(
    system: System, engine: Engine, receiver: Receiver
) -> None:
    receiver.stop()
    went_down = time.monotonic()
    job_ids = [system.send_sms(numbers(20), callback_url=receiver.url) for _ in range(2)]
    system.wait_settled(job_ids, timeout_s=180)
    wait_until(
        lambda: endpoint_failures(engine, receiver.url) >= 2,
        timeout_s=30,
        what="herald to try the receiver while it is down",
    )
    time.sleep(max(0.0, DOWN_S - (time.monotonic() - went_down)))
    assert receiver.requests() == []

    receiver.start()
    expected = told_events(engine, job_ids)
    arrived = wait_received(receiver, expected, timeout_s=120 + DOWN_S)

    assert len(expected) == 2 * 20 * 2  # submitted and delivered, for each of 40 numbers
    assert_as_in_the_store(arrived, expected)


def endpoint_failures(engine: Engine, url: str) -> int:
    with Session(engine) as session:
        endpoint = session.exec(select(WebhookEndpoint).where(WebhookEndpoint.url == url)).first()
    return 0 if endpoint is None else endpoint.attempts


def test_a_receiver_answering_500_is_tried_again_until_it_takes_them(
    system: System, engine: Engine, receiver: Receiver
) -> None:
    receiver.mode("fail")
    job_id = system.send_sms(numbers(5), callback_url=receiver.url)
    system.wait_settled([job_id], timeout_s=60)
    wait_until(
        lambda: sum(r["mode"] == "fail" for r in receiver.requests()) >= 3,
        timeout_s=30,
        what="three POSTs answered 500",
    )

    receiver.mode("ok")
    expected = told_events(engine, [job_id])
    arrived = wait_received(receiver, expected)

    assert_as_in_the_store(arrived, expected)
    for request in receiver.requests():  # the refused tries were signed too
        verified(request)


def test_sending_is_not_held_up_by_a_receiver_that_hangs(
    system: System, engine: Engine, receivers: list[Receiver]
) -> None:
    hanging, healthy = Receiver(system), Receiver(system)
    receivers.extend([hanging, healthy])
    hanging.start(mode="hang")
    healthy.start()
    slow_jobs = [system.send_sms(numbers(40), callback_url=hanging.url) for _ in range(3)]
    other_job = system.send_sms(numbers(3), callback_url=healthy.url)

    jobs = system.wait_settled([*slow_jobs, other_job], timeout_s=90)
    wait_received(healthy, told_events(engine, [other_job]))

    assert {r["status"] for job in jobs for r in job["recipients"]} == {"delivered"}
    assert hanging.requests(), "herald never tried the hanging receiver"
    assert {r["mode"] for r in hanging.requests()} == {"hang"}, "it answered while hanging?"

    hanging.mode("ok")
    expected = told_events(engine, slow_jobs)
    arrived = wait_received(hanging, expected)

    assert_as_in_the_store(arrived, expected)
    sizes = [len(verified(r)["events"]) for r in hanging.requests() if r["mode"] == "ok"]
    assert max(sizes) <= BATCH
    assert len(sizes) >= len(expected) // BATCH


def test_a_callback_url_that_is_not_http_is_refused(system: System) -> None:
    response = httpx.post(
        f"{system.api_url}/v1/sms",
        json={"to": numbers(1), "content": "【Herald】您好", "callback_url": "ftp://x.example/"},
        headers=system.headers(),
        timeout=10,
    )

    assert response.status_code == 422
    assert any(p["loc"] == ["body", "callback_url"] for p in response.json()["detail"])


def test_what_a_killed_worker_was_posting_is_posted_by_the_next(
    system: System, engine: Engine, receiver: Receiver
) -> None:
    receiver.mode("hang")
    job_id = system.send_sms(numbers(5), callback_url=receiver.url)
    system.wait_settled([job_id], timeout_s=60)
    wait_until(lambda: len(receiver.requests()) >= 2, timeout_s=30, what="POSTs left hanging")

    system.children["worker"].kill_hard()  # most likely in a POST, holding the address's lease
    receiver.mode("ok")
    system.start_worker()
    expected = told_events(engine, [job_id])
    arrived = wait_received(receiver, expected, timeout_s=120)

    assert_as_in_the_store(arrived, expected)
