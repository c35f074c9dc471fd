"""Integration: 5C's destructive report pull at volume, with two beats, and balance warnings.

Two beat processes run at once (a deployment mistake herald must survive): both schedule the
pull every second, and the poll's lock must keep their fetches from overlapping.
"""

from __future__ import annotations

import itertools
import json
import time

import httpx
import pytest
from sqlmodel import col, func, select

from tests.integration.conftest import System
from tests.support import PYTHON, SettingsEnv, wait_until
from worker.enums import Channel, DeliveryStatus
from worker.store import (
    Delivery,
    DeliveryEvent,
    NewJob,
    create_job,
    move_deliveries,
    reset_engine,
    session_scope,
    utcnow,
)

pytestmark = pytest.mark.integration

JOBS, PER_JOB = 100, 100
BALANCE_INTERVAL_S = 3
SYSTEM_ENV = {
    "HERALD_FIVEC_POLL_INTERVAL_S": "1",
    "HERALD_BALANCE_INTERVAL_S": str(BALANCE_INTERVAL_S),
    "HERALD_BALANCE_WARN_BELOW": json.dumps({"*": 1e12}),
    "SANDBOX_FIVEC_RECV_MAX": "1000",
}


@pytest.fixture
def same_store(system: System, settings_env: SettingsEnv) -> None:
    """This test process writes to the system's own store."""
    settings_env.setenv("HERALD_DATABASE_URL", system.env["HERALD_DATABASE_URL"])
    reset_engine()


def msgid(job: int) -> str:
    return f"3091117555{job:04d}"


def phone(job: int, n: int) -> str:
    return f"138{job:04d}{n:04d}"


@pytest.mark.usefixtures("same_store")
def test_ten_thousand_pulled_reports_are_each_applied_once(system: System) -> None:
    system.start(
        "beat2",
        [
            PYTHON,
            "-m",
            "celery",
            "-A",
            "worker",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(system.folder / "beat2-schedule"),
        ],
    )
    for job in range(JOBS):
        with session_scope() as session:
            stored, _ = create_job(
                session,
                new=NewJob(
                    channel=Channel.MMS,
                    vendor="fivec",
                    content="t",
                    phones=[phone(job, n) for n in range(PER_JOB)],
                ),
                now=utcnow(),
            )
            move_deliveries(
                session,
                where=col(Delivery.job_id) == stored.id,
                from_statuses=[DeliveryStatus.QUEUED],
                to=DeliveryStatus.SUBMITTED,
                now=utcnow(),
                vendor_ref=msgid(job),
            )
    layouts = itertools.cycle(["4", "5", "6"])
    reports = [
        {"msgid": msgid(job), "mobile": phone(job, n), "state": "DELIVRD", "layout": next(layouts)}
        for job in range(JOBS)
        for n in range(PER_JOB)
    ]
    system.sandbox("POST", "/_sandbox/fivec/reports", json={"reports": reports, "encoding": "gbk"})

    def all_delivered() -> bool:
        with session_scope() as session:
            delivered = session.exec(
                select(func.count()).where(col(Delivery.status) == DeliveryStatus.DELIVERED)
            ).one()
        return delivered == JOBS * PER_JOB

    wait_until(all_delivered, timeout_s=240, what="10,000 reports to be applied")

    with session_scope() as session:
        applied = session.exec(
            select(DeliveryEvent.delivery_id, func.count())
            .where(col(DeliveryEvent.to_status) == DeliveryStatus.DELIVERED)
            .group_by(col(DeliveryEvent.delivery_id))
        ).all()
    assert len(applied) == JOBS * PER_JOB
    assert {count for _, count in applied} == {1}

    fetches = sorted(
        (r["start"], r["end"])
        for r in system.sandbox("GET", "/_sandbox/requests")
        if r["path"] == "/api/recv/index.php"
    )
    overlaps = [(a, b) for a, b in itertools.pairwise(fetches) if b[0] < a[1]]
    assert len(fetches) >= 10
    assert overlaps == [], f"{len(overlaps)} overlapping fetches"
    print(f"{len(applied)} reports applied once each over {len(fetches)} fetches, no overlap")


def test_a_low_balance_warns_once_per_interval_in_the_log_and_the_api(system: System) -> None:
    time.sleep(2 * BALANCE_INTERVAL_S + 1)

    vendors = httpx.get(f"{system.api_url}/v1/vendors", timeout=10).json()
    assert {v["product"]: v["low"] for v in vendors if v["configured"]} == {
        "veesing:sms": True,
        "veesing:mms": True,
        "veesing:voice": True,
        "chuangrui:sms": True,
        "fivec:mms": True,
    }
    log = system.children["worker"].log()
    warnings = log.count("balance of veesing:sms is low")
    started = system.children["worker"].started_at
    polls = (time.monotonic() - started) / BALANCE_INTERVAL_S
    assert 1 <= warnings <= polls + 1, (warnings, polls)
