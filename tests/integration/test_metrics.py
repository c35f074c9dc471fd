"""Integration: `/metrics` scraped during a run matches the store; `/readyz` and `herald health`
follow the worker and beat as they stop and start again."""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections import Counter

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.integration.conftest import System
from tests.support import HERALD, wait_until

pytestmark = pytest.mark.integration

SYSTEM_ENV = {
    "HERALD_METRICS_DIR": tempfile.mkdtemp(prefix="herald-metrics-"),
    "HERALD_LIVENESS_INTERVAL_S": "1",
    "HERALD_READY_WORKER_S": "8",
    "HERALD_READY_BEAT_S": "8",
}
READY_WITHIN_S = 30


def scrape(system: System) -> dict[str, list[tuple[dict[str, str], float]]]:
    response = httpx.get(f"{system.api_url}/metrics", headers=system.headers(), timeout=10)
    assert response.status_code == 200, response.text
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def readyz(system: System) -> httpx.Response:
    return httpx.get(f"{system.api_url}/readyz", timeout=10)


def wait_ready(system: System, ready: bool, what: str) -> None:
    wait_until(
        lambda: (readyz(system).status_code == 200) is ready,
        timeout_s=READY_WITHIN_S,
        what=what,
    )


def test_balances_are_read_when_the_worker_starts(system: System) -> None:
    """Not only after beat's first HERALD_BALANCE_INTERVAL_S (ten minutes by default)."""

    def read() -> bool:
        response = httpx.get(f"{system.api_url}/v1/vendors", headers=system.headers(), timeout=10)
        known = {p["product"]: p for p in response.json()}
        return known["veesing:sms"]["checked_at"] is not None

    wait_until(read, timeout_s=READY_WITHIN_S, what="the balances read at the worker's start")
    balances = {
        labels["product"]
        for labels, _ in scrape(system)["herald_vendor_balance_checked_timestamp_seconds"]
    }
    assert "veesing:sms" in balances


def test_metrics_match_the_store_and_show_the_worker_s_vendor_calls(
    system: System, engine: Engine
) -> None:
    phones = [f"1380013800{n}" for n in range(6)]
    job_ids = [system.send_sms(phones[n : n + 2]) for n in (0, 2, 4)]
    system.wait_settled(job_ids, timeout_s=30)

    samples = scrape(system)

    with engine.connect() as connection:
        rows = connection.execute(text("SELECT status, count(*) FROM delivery GROUP BY status"))
        in_store = {str(status).lower(): int(count) for status, count in rows}
    scraped: Counter[str] = Counter()
    for labels, value in samples["herald_deliveries"]:
        scraped[labels["status"]] += int(value)
    assert dict(scraped) == in_store
    assert in_store.get("delivered") == 6
    assert {labels["queue"] for labels, _ in samples["herald_queue_depth"]} == {
        "send",
        "maintenance",
        "pushes",
    }
    assert "herald_oldest_queued_age_seconds" in samples
    assert {(lb["vendor"], lb["channel"]) for lb, _ in samples["herald_breaker_open"]} >= {
        ("veesing", "sms")
    }
    calls = {
        labels["outcome"]: value
        for labels, value in samples["herald_vendor_call_seconds_count"]
        if labels["vendor"] == "veesing"
    }
    assert calls.get("accepted", 0) >= 3, samples["herald_vendor_call_seconds_count"]


def test_readyz_follows_the_worker_and_beat(system: System) -> None:
    wait_ready(system, True, "/readyz to answer ready")
    body = readyz(system).json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"store", "redis", "worker", "beat"}
    assert subprocess.run([HERALD, "health"], env=system.env, timeout=30).returncode == 0

    system.children["worker"].stop()
    started = time.monotonic()
    wait_ready(system, False, "/readyz to fail without a worker")
    assert time.monotonic() - started < READY_WITHIN_S
    assert readyz(system).json()["checks"]["worker"]["ok"] is False
    assert subprocess.run([HERALD, "health"], env=system.env, timeout=30).returncode == 1
    system.start_worker()
    wait_ready(system, True, "/readyz to recover with a new worker")

    beat = system.children["beat"]
    beat.stop()
    wait_ready(system, False, "/readyz to fail without beat")
    assert readyz(system).json()["checks"]["beat"]["ok"] is False
    system.start("beat", beat.argv)
    wait_ready(system, True, "/readyz to recover with beat again")
