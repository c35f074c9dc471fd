"""Integration: a worker killed while it holds claimed recipients; its claims lapse after
HERALD_CLAIM_LEASE_S and every recipient is sent once.

The store is PostgreSQL here, so the test can hold the workers right after their claim: it
locks the suppression table, which a marketing batch reads just after it is claimed. The
workers then sit on `claimed` rows, and the whole worker is SIGKILLed. The sending timeout is
set far beyond the test's patience, so only the lease can bring those rows back.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import make_postgres_database
from tests.integration.conftest import System
from tests.support import wait_until

pytestmark = pytest.mark.integration

SYSTEM_ENV = {
    "HERALD_CLAIM_LEASE_S": "3",
    "HERALD_SWEEP_INTERVAL_S": "1",
    "HERALD_SENDING_TIMEOUT_S": "600",
}


@pytest.fixture(scope="module", autouse=True)
def postgres_store() -> Iterator[str]:
    """The module's store: a PostgreSQL database of its own (set before the system starts)."""
    url, drop = make_postgres_database()
    SYSTEM_ENV["HERALD_DATABASE_URL"] = url
    yield url
    drop()


def plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def claimed_count(url: str) -> int:
    with psycopg.connect(plain(url), autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM delivery WHERE status = 'claimed'").fetchone()
        return int(row[0]) if row else 0


def lease_returns(url: str) -> int:
    """Recipients the sweeper queued again because their claim lapsed."""
    with psycopg.connect(plain(url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM deliveryevent"
            " WHERE from_status = 'claimed' AND to_status = 'queued'"
        ).fetchone()
        return int(row[0]) if row else 0


def test_a_killed_workers_claimed_batches_are_taken_back_and_sent_once(
    system: System, postgres_store: str
) -> None:
    batches = [[f"1570{b:03d}{n:04d}" for n in range(5)] for b in range(4)]
    lock = psycopg.connect(plain(postgres_store))
    try:
        lock.execute("LOCK TABLE suppression IN ACCESS EXCLUSIVE MODE")
        job_ids = [system.send_sms(phones) for phones in batches]
        wait_until(
            lambda: claimed_count(postgres_store) >= 10,
            timeout_s=30,
            what="both worker processes to hold a claimed batch",
        )

        system.children["worker"].kill_hard()
    finally:
        lock.rollback()
        lock.close()
    system.start_worker()
    jobs = system.wait_settled(job_ids, timeout_s=90)

    phones = [p for batch in batches for p in batch]
    sends = Counter(s["phone"] for s in system.sandbox_sends() if s["phone"] in phones)
    assert sends == Counter(phones), "a recipient was lost or sent twice"
    assert {r["status"] for job in jobs for r in job["recipients"]} == {"delivered"}
    assert lease_returns(postgres_store) >= 10
