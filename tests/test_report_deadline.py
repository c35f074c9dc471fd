"""Unit tests of the report deadline: a recipient the vendor took but whose report never came
(lost on the way, or never sent) does not stay `submitted` for ever (on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import col

from tests.support import SettingsEnv
from worker.delivery_reports import DeliveryReport
from worker.enums import Channel, DeliveryStatus
from worker.store import (
    Delivery,
    NewJob,
    apply_report,
    create_job,
    deliveries_of,
    move_deliveries,
    session_scope,
    utcnow,
)
from worker.store.sweeper import NO_REPORT, expire_unreported

pytestmark = pytest.mark.usefixtures("store_url")
PHONES = ["13800138000", "13900139000"]


def submitted_job(ref: str, seconds_ago: float) -> str:
    now = utcnow()
    new = NewJob(channel=Channel.MMS, vendor="fivec", content="t", phones=PHONES)
    with session_scope() as session:
        job, _ = create_job(session, new=new, now=now)
        move_deliveries(
            session,
            where=col(Delivery.job_id) == job.id,
            from_statuses=[DeliveryStatus.QUEUED],
            to=DeliveryStatus.SUBMITTED,
            now=now,
            vendor_ref=ref,
            submitted_at=now - timedelta(seconds=seconds_ago),
        )
        return job.id


def states(job_id: str) -> list[tuple[DeliveryStatus, str | None]]:
    with session_scope() as session:
        return [(d.status, d.last_error) for d in deliveries_of(session, job_id=job_id)]


def test_a_submitted_recipient_without_a_report_past_the_deadline_becomes_unknown() -> None:
    overdue = submitted_job("1001", seconds_ago=120)
    recent = submitted_job("1002", seconds_ago=30)

    with session_scope() as session:
        moved = expire_unreported(session, now=utcnow(), older_than_s=60)

    assert len(moved) == 2
    assert states(overdue) == [(DeliveryStatus.UNKNOWN, NO_REPORT)] * 2
    assert states(recent) == [(DeliveryStatus.SUBMITTED, None)] * 2


def test_a_report_that_comes_after_the_deadline_still_settles_the_recipient() -> None:
    job_id = submitted_job("1003", seconds_ago=120)
    with session_scope() as session:
        expire_unreported(session, now=utcnow(), older_than_s=60)
    report = DeliveryReport(
        vendor="fivec",
        channel=Channel.MMS,
        vendor_ref="1003",
        phone=PHONES[0],
        status=DeliveryStatus.DELIVERED,
        vendor_status="DELIVRD",
        reported_at=utcnow(),
    )

    with session_scope() as session:
        apply_report(session, report=report, now=utcnow())

    assert [status for status, _ in states(job_id)] == [
        DeliveryStatus.DELIVERED,
        DeliveryStatus.UNKNOWN,
    ]


def test_the_sweep_applies_the_report_deadline_setting(
    settings_env: SettingsEnv, redis_url: str, tmp_path: Path
) -> None:
    from tasks.maintenance import sweep

    settings_env.setenv("HERALD_REPORT_DEADLINE_S", "60")
    settings_env.setenv("HERALD_DATA_DIR", str(tmp_path / "data"))
    overdue = submitted_job("1004", seconds_ago=61)

    result = sweep()

    assert result["unreported"] == 2
    assert states(overdue) == [(DeliveryStatus.UNKNOWN, NO_REPORT)] * 2
