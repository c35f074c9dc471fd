"""Chaos 3: PostgreSQL refuses connections for 10 s mid-run (the proxy in front of it resets
every open connection and stops listening; the machine's PostgreSQL is never touched).

Producers keep submitting through the outage, retrying with the same idempotency key; the API
should answer them 503 with Retry-After (not 500), the vendors' receipt pushes likewise, and
the workers should wait and resume. The `herald status` command is run during the outage to see
what an operator gets.
"""

from __future__ import annotations

import subprocess
import threading
import time

import httpx
import pytest

from tests.chaos.conftest import Sizes, SystemFactory, record, verdict
from tests.chaos.ledger import Ledger, chunks, phones, sweep_totals
from tests.chaos.system import ChaosSystem
from tests.support import HERALD

pytestmark = pytest.mark.chaos

OUTAGE_S = 10.0


TASK_LIMITS = {
    "HERALD_TASK_TIME_LIMIT_S": "30",
    "HERALD_SENDING_TIMEOUT_S": "40",
    "HERALD_VISIBILITY_TIMEOUT_S": "70",
    "HERALD_LIVENESS_TIMEOUT_S": "45",
}
"""A worker retries recording a vendor call's outcome for as long as its task may still run
(HERALD_STORE_RETRY_S, within the task limit and the `sending` timeout). The suite's usual 9 s
limit is shorter than the outage, which no production limit (120 s) is, so this scenario gets
limits that can outlast it: what is tested is that the outcome is recorded, not guessed."""
GUESSED = "sending timed out: the worker stopped during the vendor call"


@pytest.fixture(scope="module")
def system(start_system: SystemFactory) -> ChaosSystem:
    return start_system(env=TASK_LIMITS)


def test_postgresql_refuses_connections_for_ten_seconds(system: ChaosSystem, sizes: Sizes) -> None:
    ledger = Ledger(system, "PostgreSQL refuses 10 s", "p")
    marks = system.log_marks()
    system.sandbox("POST", "/_sandbox/faults", json={"latency_s": 0.3, "paths": ["/smsApi"]})
    jobs = chunks(phones(30, sizes.recipients), sizes.per_job)
    half = len(jobs) // 2
    try:
        for job in jobs[:half]:
            ledger.submit_sms(job)
        time.sleep(0.5)
        in_flight = ledger.in_flight()
        first_job = next(iter(ledger.jobs))
        system.pg_proxy.refuse()
        refused_at = time.monotonic()
        producer = threading.Thread(
            target=lambda: [ledger.submit_sms(job, patience_s=120) for job in jobs[half:]]
        )
        producer.start()
        time.sleep(1)
        during = probe_during_outage(system, first_job)
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - refused_at)))
        system.pg_proxy.accept()
        producer.join()
    finally:
        system.sandbox("POST", "/_sandbox/faults", json={"latency_s": 0.0})
    settled = ledger.wait_settled(sizes.settle_s)
    row = record(ledger, settled=settled)
    logs = system.logs_since(marks)
    gave_up = [
        p for p in system.sandbox("GET", "/_sandbox/pushes")["done"] if p["result"] == "given_up"
    ]
    row.notes.append(
        f"in flight at the refusal: {dict(in_flight)}; during the outage: {during}; "
        f"receipt pushes the sandbox gave up on: {len(gave_up)}; "
        f"sweeps: {dict(sweep_totals(logs))}"
    )
    answers = set(ledger.api_answers) - {"202"}
    if any(not a.endswith("Retry-After") for a in answers if a[:1].isdigit()):
        row.problems.append(f"the API answered producers {sorted(answers)}, not 503 Retry-After")
    if during["GET /v1/messages"] != "503 Retry-After":
        row.problems.append(f"GET /v1/messages answered {during['GET /v1/messages']}")
    guessed = sum(1 for _, error in ledger.statuses().values() if error == GUESSED)
    if guessed:
        row.problems.append(f"{guessed} marked '{GUESSED}' although the worker was alive")
    for name in ("worker", "beat", "api"):
        if not system.children[name].alive():
            row.problems.append(f"{name} exited")
    verdict(row, system)


def probe_during_outage(system: ChaosSystem, job_id: str) -> dict[str, str]:
    """What a reader of the API and an operator at the command line get while the store is
    unreachable."""
    seen: dict[str, str] = {}
    response = httpx.get(f"{system.api_url}/v1/messages/{job_id}", timeout=15)
    retry_after = " Retry-After" if "retry-after" in response.headers else ""
    seen["GET /v1/messages"] = f"{response.status_code}{retry_after}"
    started = time.monotonic()
    cli = subprocess.run(
        [HERALD, "status", job_id], env=system.env, capture_output=True, text=True, timeout=60
    )
    last = (cli.stderr.strip().splitlines() or [""])[-1][:160]
    seen["herald status"] = f"exit {cli.returncode} in {time.monotonic() - started:.1f} s: {last}"
    return seen
