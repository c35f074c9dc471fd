"""Integration: retries that never send twice, ambiguous calls, and scheduled sends.

The sandbox injects faults: explicit retry-able replies and HTTP 503 (safe to send again), and
calls it takes and then never answers (ambiguous: must never be sent again). A scheduled send
waits in the store, not in Redis, so a visibility timeout shorter than the wait cannot make it
run twice.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.conftest import System

pytestmark = pytest.mark.integration

SYSTEM_ENV = {
    "HERALD_RETRY_BASE_S": "0.2",
    "HERALD_RETRY_MAX_S": "2",
    "HERALD_MAX_ERROR_ATTEMPTS": "30",
    "HERALD_VISIBILITY_TIMEOUT_S": "20",  # twice the task limit (9 s) and a little more
}


@pytest.fixture
def faults(system: System) -> Iterator[None]:
    yield
    system.sandbox("POST", "/_sandbox/faults", json={"error_rate": 0.0})


def sends_to(system: System, phones: list[str]) -> Counter[str]:
    return Counter(s["phone"] for s in system.sandbox_sends() if s["phone"] in phones)


@pytest.mark.usefixtures("faults")
def test_with_thirty_percent_safe_errors_every_job_is_submitted_exactly_once(
    system: System,
) -> None:
    system.sandbox(
        "POST",
        "/_sandbox/faults",
        json={"error_rate": 0.3, "errors": ["reply", "503"], "paths": ["/smsApi/group"]},
    )
    phones = [f"1520000{n:04d}" for n in range(60)]

    job_ids = [system.send_sms([phone]) for phone in phones]
    jobs = system.wait_settled(job_ids, timeout_s=90)

    assert {job["recipients"][0]["status"] for job in jobs} == {"delivered"}
    assert sends_to(system, phones) == Counter({phone: 1 for phone in phones})
    refused = [
        r
        for r in system.sandbox("GET", "/_sandbox/requests")
        if r.get("path") == "/smsApi/group" and r.get("outcome") not in (None, "ok", "accepted")
    ]
    assert refused, "the sandbox injected no fault: the test proved nothing"
    print(f"{len(refused)} calls refused by injected faults, {len(phones)} sends, 0 duplicates")


@pytest.mark.usefixtures("faults")
def test_a_call_the_vendor_took_but_never_answered_is_unknown_and_not_sent_again(
    system: System,
) -> None:
    system.sandbox(
        "POST",
        "/_sandbox/faults",
        json={"timeout_after_send_rate": 1.0, "stall_s": 30, "paths": ["/smsApi/group"]},
    )
    phones = [f"1530000{n:04d}" for n in range(3)]

    job_ids = [system.send_sms([phone]) for phone in phones]
    jobs = system.wait_settled(job_ids, timeout_s=60)
    system.sandbox("POST", "/_sandbox/faults", json={"error_rate": 0.0})
    time.sleep(6)  # three sweeps: nothing may resend them

    for job in jobs:
        (recipient,) = job["recipients"]
        assert recipient["status"] in ("unknown", "delivered"), recipient
        if recipient["status"] == "unknown":
            assert "ReadTimeout" in recipient["last_error"]
    assert sends_to(system, phones) == Counter({phone: 1 for phone in phones})


def test_a_send_at_beyond_the_visibility_timeout_is_sent_once_at_its_time(
    system: System,
) -> None:
    send_at = datetime.now(UTC) + timedelta(seconds=25)  # beyond the 20 s visibility timeout
    job_id = system.send_sms(["15400000001"], send_at=send_at.isoformat())

    assert system.job(job_id)["recipients"][0]["status"] == "scheduled"
    (job,) = system.wait_settled([job_id], timeout_s=60)
    time.sleep(22)  # past another visibility timeout: a redelivery would show now

    assert job["recipients"][0]["status"] == "delivered"
    (sent,) = [s for s in system.sandbox_sends() if s["phone"] == "15400000001"]
    assert datetime.fromisoformat(sent["at"]) >= send_at
