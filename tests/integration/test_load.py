"""Campaign-sized load through the whole system: big jobs cut into chunks that several worker
processes claim at once, with the sandbox's receipts flowing back the whole time.

Small in CI (10 jobs × 1,000 recipients, 2 worker processes); `HERALD_LOAD_JOBS` and
`HERALD_LOAD_RECIPIENTS` give the full sizes (20 × 5,000, or 1 × 100,000). The store is a
PostgreSQL database of its own when one answers (where claims use `SKIP LOCKED`), SQLite else.
Asserts correctness only: every recipient `delivered`, none `unknown` or left behind, each
number sent exactly once by the sandbox's own count of its sends (the module has a sandbox of
its own, so every send it counts is this test's).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.conftest import make_postgres_database
from tests.integration.conftest import System
from tests.support import wait_until
from worker.store import Delivery

JOBS = int(os.environ.get("HERALD_LOAD_JOBS", "10"))
RECIPIENTS = int(os.environ.get("HERALD_LOAD_RECIPIENTS", "1000"))
SETTLE_S = float(os.environ.get("HERALD_LOAD_SETTLE_S", "600"))
WORKER_CONCURRENCY = 2
SYSTEM_ENV: dict[str, str] = {
    # Room for a send run (HERALD_SEND_RUN_S) beside its longest vendor call within the soft
    # time limit, which the other integration modules' short limits leave none of.
    "HERALD_TASK_TIME_LIMIT_S": "40",
    "HERALD_HTTP_READ_TIMEOUT_S": "15",
    "HERALD_SENDING_TIMEOUT_S": "90",
    "HERALD_MAX_RECIPIENTS": str(max(RECIPIENTS, 1000)),
    "HERALD_SEND_FANOUT": "4",
    "HERALD_LIMITS": '{"veesing:sms": {"requests_per_second": 200}}',
    "SANDBOX_PUSH_DELAY_S": "0.2",
    "SANDBOX_UNDELIVERED_RATE": "0",
}


@pytest.fixture(scope="module", autouse=True)
def postgres_store() -> Iterator[None]:
    """A PostgreSQL store for the module when one answers (set before `system` starts)."""
    try:
        url, drop = make_postgres_database()
    except pytest.skip.Exception:
        yield
        return
    from worker.store import migrate

    migrate.upgrade(url)
    SYSTEM_ENV["HERALD_DATABASE_URL"] = url
    yield
    del SYSTEM_ENV["HERALD_DATABASE_URL"]
    drop()


@pytest.fixture(scope="module")
def store(system: System) -> Iterator[Engine]:
    from worker.store import make_engine

    engine = make_engine(system.env["HERALD_DATABASE_URL"])
    yield engine
    engine.dispose()


def numbers(job: int) -> list[str]:
    """Distinct numbers across every job of the test: no rule holds any of them back."""
    return [f"139{job:03d}{n:05d}" for n in range(RECIPIENTS)]


def counts_by_status(store: Engine, job_ids: list[str]) -> Counter[str]:
    statement = (
        sa.select(Delivery.status, sa.func.count())  # type: ignore[call-overload]
        .where(Delivery.job_id.in_(job_ids))  # type: ignore[attr-defined]
        .group_by(Delivery.status)
    )
    with store.connect() as connection:
        return Counter({str(status): n for status, n in connection.execute(statement)})


def test_every_recipient_of_big_jobs_is_delivered_once(system: System, store: Engine) -> None:
    job_ids = [
        system.submit("/v1/sms", {"to": numbers(job), "content": f"【Herald】活动 {job}"})
        for job in range(JOBS)
    ]
    total = JOBS * RECIPIENTS
    final = {"delivered", "undelivered", "failed", "cancelled", "unknown"}

    def all_final() -> bool:
        counts = counts_by_status(store, job_ids)
        return sum(n for status, n in counts.items() if status in final) == total

    try:
        wait_until(all_final, timeout_s=SETTLE_S, what=f"{total} recipients to be final")
    except AssertionError:
        counts = counts_by_status(store, job_ids)
        message = f"not final after {SETTLE_S} s: {counts}\n{system.logs_tail()}"
        raise AssertionError(message) from None

    assert counts_by_status(store, job_ids) == Counter({"delivered": total})
    sent = httpx.get(f"{system.sandbox_url}/_sandbox/log/summary", timeout=60).json()
    assert (sent["sends"], sent["numbers"], sent["repeated_numbers"]) == (total, total, {})
