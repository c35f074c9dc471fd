"""Unit tests of `GET /metrics` and `GET /readyz` (in-process), against a fresh store and this
run's Redis (no worker, no beat)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import col, select

from tests.support import SettingsEnv
from worker.api import api
from worker.enums import DeliveryStatus
from worker.store import Delivery, move_deliveries, session_scope, utcnow
from worker.store.webhooks import tail_events

pytestmark = pytest.mark.usefixtures("store_url", "redis_url")


@pytest.fixture
def client(settings_env: SettingsEnv, tmp_path: Path) -> Iterator[TestClient]:
    settings_env.setenv("HERALD_METRICS_DIR", str(tmp_path / "metrics"))
    with TestClient(api) as test_client:
        yield test_client


def samples(client: TestClient) -> dict[str, list[tuple[dict[str, str], float]]]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def defer(phone: str, reason: str) -> None:
    with session_scope() as session:
        move_deliveries(
            session,
            where=col(Delivery.phone) == phone,
            from_statuses=[DeliveryStatus.QUEUED],
            to=DeliveryStatus.DEFERRED,
            now=utcnow(),
            last_error=reason,
            not_before=utcnow(),
        )


def test_deliveries_and_deferrals_are_counted_from_the_store(client: TestClient) -> None:
    phones = ["13800138000", "13800138001", "13800138002"]
    response = client.post("/v1/sms", json={"to": phones, "content": "【Herald】您好"})
    assert response.status_code == 202
    defer(phones[0], "held by the one-message-per-minute rule until 2026-12-01T10:00:00+00:00")
    defer(phones[1], "veesing: HTTP 502 (attempt 1)")

    found = samples(client)

    deliveries = {lb["status"]: v for lb, v in found["herald_deliveries"]}
    assert deliveries == {"queued": 1, "deferred": 2}
    assert {lb["channel"] for lb, _ in found["herald_deliveries"]} == {"sms"}
    assert {lb["rule"]: v for lb, v in found["herald_deferred"]} == {"minute": 1, "retry": 1}
    queues = {lb["queue"] for lb, _ in found["herald_queue_depth"]}
    assert queues == {"send", "maintenance", "pushes"}
    (_, age), *_ = found["herald_oldest_queued_age_seconds"]
    assert age >= 0
    assert len(found["herald_breaker_open"]) == 5


def test_the_queued_age_is_zero_when_nothing_is_queued(client: TestClient) -> None:
    with session_scope() as session:
        assert session.exec(select(Delivery)).first() is None
    assert samples(client)["herald_oldest_queued_age_seconds"] == [({}, 0.0)]


def test_readyz_names_each_check_and_fails_without_worker_or_beat(client: TestClient) -> None:
    response = client.get("/readyz")

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["store"]["ok"] and checks["redis"]["ok"]
    assert not checks["worker"]["ok"] and not checks["beat"]["ok"]
    assert response.json()["status"] == "unready"


def test_the_webhook_backlog_is_counted_from_the_store(
    client: TestClient, settings_env: SettingsEnv
) -> None:
    settings_env.setenv("HERALD_WEBHOOK_SECRET", "s" * 32)
    body = {
        "to": ["13800138000"],
        "content": "【Herald】您好",
        "callback_url": "http://127.0.0.1:9/",
    }
    job_id = client.post("/v1/sms", json=body).json()["id"]
    assert client.post(f"/v1/messages/{job_id}/cancel").status_code == 200
    with session_scope() as session:
        tail_events(session, now=utcnow(), limit=100, gap_wait_s=60)

    found = samples(client)

    assert found["herald_webhook_backlog"] == [({}, 1.0)]
    assert found["herald_webhook_oldest_age_seconds"][0][1] >= 0
    assert found["herald_webhook_failing_addresses"] == [({}, 0.0)]
