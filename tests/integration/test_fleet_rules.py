"""Integration: the vendor's rules hold across a fleet of worker processes.

Four worker processes, 2,000 SMS jobs aimed at 50 numbers. The minute rule is shortened to 2 s
on both sides (herald's limits and the sandbox's own rule) so that a day's worth of sends fits
in a test; the per-number daily cap stays the vendors' usual 10.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import defaultdict
from datetime import datetime

import httpx
import pytest

from tests.integration.conftest import System

pytestmark = pytest.mark.integration

MINUTE_S = 2.0
DAILY_CAP = 10
NUMBERS = [f"1390000{n:04d}" for n in range(50)]
JOBS = 2000
WORKER_CONCURRENCY = 4
SYSTEM_ENV = {
    "HERALD_LIMITS": json.dumps(
        {"veesing:sms": {"minute_s": MINUTE_S, "per_number_daily": DAILY_CAP}}
    ),
    "SANDBOX_MINUTE_RULE_S": str(MINUTE_S),
    "SANDBOX_PER_NUMBER_DAILY_CAP": str(DAILY_CAP),
    "HERALD_RELEASE_INTERVAL_S": "0.5",
    "HERALD_REQUEUE_AFTER_S": "120",
}


def test_two_thousand_jobs_on_fifty_numbers_never_break_the_vendor_rules(
    system: System,
) -> None:
    with httpx.Client(base_url=system.api_url, timeout=10) as client:
        job_ids = []
        for n in range(JOBS):
            response = client.post(
                "/v1/sms",
                json={
                    "to": [NUMBERS[n % len(NUMBERS)]],
                    "content": f"【Herald】第{n}条",
                    "on_daily_cap": "defer",
                    "purpose": "notification",
                },
            )
            assert response.status_code == 202, response.text
            job_ids.append(response.json()["id"])

    def settled_for_today(jobs: list[str]) -> bool:
        statuses = [system.job(j)["recipients"][0] for j in jobs]
        return all(
            r["status"] == "delivered"
            or (r["status"] == "deferred" and "daily cap" in (r["last_error"] or ""))
            for r in statuses
        )

    sample = job_ids[-len(NUMBERS) :]
    deadline_s = 4 * MINUTE_S * DAILY_CAP + 60
    deadline = time.monotonic() + deadline_s
    while not settled_for_today(sample) and time.monotonic() < deadline:
        time.sleep(1)

    sends: dict[str, list[datetime]] = defaultdict(list)
    for entry in system.sandbox_sends():
        sends[entry["phone"]].append(datetime.fromisoformat(entry["at"]))
    for phone, times in sends.items():
        times.sort()
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
        assert len(times) <= DAILY_CAP, f"{phone} got {len(times)} messages in one day"
        assert min(gaps, default=MINUTE_S) >= MINUTE_S * 0.95, f"{phone}: gaps {gaps}"
    assert sum(len(t) for t in sends.values()) == DAILY_CAP * len(NUMBERS)

    outcomes: dict[str, int] = defaultdict(int)
    for job_id in job_ids:
        (recipient,) = system.job(job_id)["recipients"]
        outcomes[recipient["status"]] += 1
        if recipient["status"] == "deferred":
            assert "daily cap of this number" in recipient["last_error"], recipient
        else:
            assert recipient["status"] == "delivered", recipient
    assert outcomes == {"delivered": DAILY_CAP * len(NUMBERS), "deferred": JOBS - 500}
    print(f"fleet: {dict(outcomes)}; sends per number {DAILY_CAP}; min gap >= {MINUTE_S} s")
