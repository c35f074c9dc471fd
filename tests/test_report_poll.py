"""The 5C report pull, in-process against the sandbox app: nothing fetched is ever lost.

The sandbox's FastAPI app is served through Starlette's TestClient (an httpx client), so the
adapter speaks real HTTP semantics to it without a port; the store is a fresh one per test.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, select

import tasks.reports
from tasks.maintenance import sweep
from tests.conftest import REDIS
from tests.support import SettingsEnv
from worker import clients
from worker.enums import Channel, DeliveryStatus
from worker.errors import StoreUnavailable
from worker.names import FIVEC_REPORT_POLL_LOCK_KEY
from worker.redis_client import redis_client
from worker.sandbox.app import create_app
from worker.sandbox.config import SandboxConfig
from worker.settings import get_settings
from worker.store import (
    Delivery,
    NewJob,
    VendorPush,
    create_job,
    move_deliveries,
    session_scope,
    utcnow,
)
from worker.vendors.fivec import parse_report_records

pytestmark = pytest.mark.usefixtures("store_url")
POLL_DB = 13


@pytest.fixture
def sandbox(
    monkeypatch: pytest.MonkeyPatch, settings_env: SettingsEnv, redis_url: str, tmp_path: Path
) -> Iterator[TestClient]:
    """The 5C simulator in-process, herald's 5C settings pointing at it; a spool of the test's
    own."""
    for name, value in {
        "HERALD_DATA_DIR": str(tmp_path / "data"),
        "HERALD_FIVEC_BASE": "http://sandbox",
        "HERALD_FIVEC_APIKEY": "sandbox-apikey",
        "HERALD_FIVEC_USERNAME": "sandbox-username",
        "HERALD_FIVEC_PASSWORD": "sandbox-password",
        "HERALD_LIMITS_REDIS_URL": REDIS.url(POLL_DB),
    }.items():
        settings_env.setenv(name, value)
    redis_client.cache_clear()
    redis_client().flushdb()
    with TestClient(create_app(SandboxConfig()), base_url="http://sandbox") as client:
        monkeypatch.setattr(clients, "http_client", lambda: client)
        yield client
    redis_client.cache_clear()


def submitted_fivec_job(msgid: str, phones: list[str]) -> None:
    with session_scope() as session:
        job, _ = create_job(
            session,
            new=NewJob(channel=Channel.MMS, vendor="fivec", content="t", phones=phones),
            now=utcnow(),
        )
        move_deliveries(
            session,
            where=col(Delivery.job_id) == job.id,
            from_statuses=[DeliveryStatus.QUEUED],
            to=DeliveryStatus.SUBMITTED,
            now=utcnow(),
            vendor_ref=msgid,
        )


def statuses() -> list[DeliveryStatus]:
    with session_scope() as session:
        return [d.status for d in session.exec(select(Delivery).order_by(col(Delivery.id)))]


def queue_reports(sandbox: TestClient, msgid: str, phones: list[str], **extra: object) -> None:
    reports = [{"msgid": msgid, "mobile": p, "state": "DELIVRD"} for p in phones]
    sandbox.post("/_sandbox/fivec/reports", json={"reports": reports, **extra}).raise_for_status()


def recv_calls(sandbox: TestClient) -> int:
    requests = sandbox.get("/_sandbox/requests").json()
    return sum(r["path"] == "/api/recv/index.php" for r in requests)


PHONES = ["13800138000", "13900139000", "15000150000"]


def test_a_poll_applies_each_report_to_its_delivery(sandbox: TestClient) -> None:
    submitted_fivec_job("30911175558600", PHONES)
    queue_reports(sandbox, "30911175558600", PHONES, encoding="gbk")

    tasks.reports.poll_fivec_reports()

    assert statuses() == [DeliveryStatus.DELIVERED] * 3


def test_a_poll_that_dies_after_the_fetch_loses_nothing(
    sandbox: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    submitted_fivec_job("30911175558601", PHONES)
    queue_reports(sandbox, "30911175558601", PHONES)

    def store_fails(_push_id: int) -> str:
        raise RuntimeError("the database went away right after the fetch")

    monkeypatch.setattr(tasks.reports, "apply_push", store_fails)
    with pytest.raises(RuntimeError):
        tasks.reports.poll_fivec_reports()

    left_at_vendor = clients.fivec_adapter(get_settings()).fetch_report_body()
    assert parse_report_records(left_at_vendor) == []  # read once, gone from the vendor
    with session_scope() as session:
        (kept,) = session.exec(select(VendorPush)).all()
    assert (kept.kind, kept.applied_at) == ("reports", None)
    assert statuses() == [DeliveryStatus.SUBMITTED] * 3

    sweep()

    assert statuses() == [DeliveryStatus.DELIVERED] * 3


def test_no_fetch_while_the_store_is_unreachable(
    sandbox: TestClient, settings_env: SettingsEnv
) -> None:
    queue_reports(sandbox, "1", PHONES)
    settings_env.setenv("HERALD_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    from worker.store import reset_engine

    reset_engine()
    outcome = tasks.reports.poll_fivec_reports()

    assert outcome == "store unreachable"
    assert recv_calls(sandbox) == 0


def test_a_poll_does_not_fetch_while_another_holds_the_lock(sandbox: TestClient) -> None:
    queue_reports(sandbox, "1", PHONES)
    held = redis_client().lock(FIVEC_REPORT_POLL_LOCK_KEY, timeout=30)
    assert held.acquire(blocking=False)

    outcome = tasks.reports.poll_fivec_reports()

    held.release()
    assert outcome == "another poll is running"
    assert recv_calls(sandbox) == 0


def test_a_report_for_a_msgid_not_stored_yet_is_applied_once_it_is(sandbox: TestClient) -> None:
    with session_scope() as session:
        job, _ = create_job(
            session,
            new=NewJob(channel=Channel.MMS, vendor="fivec", content="t", phones=PHONES[:1]),
            now=utcnow(),
        )
    queue_reports(sandbox, "30911175558602", PHONES[:1])

    tasks.reports.poll_fivec_reports()
    assert statuses() == [DeliveryStatus.QUEUED]
    with session_scope() as session:
        move_deliveries(
            session,
            where=col(Delivery.job_id) == job.id,
            from_statuses=[DeliveryStatus.QUEUED],
            to=DeliveryStatus.SUBMITTED,
            now=utcnow(),
            vendor_ref="30911175558602",
        )
    sweep()

    assert statuses() == [DeliveryStatus.DELIVERED]


def spooled_pages() -> list[Path]:
    return tasks.reports.report_spool().pending()


def pushes_stored() -> int:
    with session_scope() as session:
        return len(session.exec(select(VendorPush)).all())


def test_a_page_whose_store_went_away_after_the_fetch_is_kept_once_the_store_answers(
    sandbox: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    submitted_fivec_job("30911175558603", PHONES)
    queue_reports(sandbox, "30911175558603", PHONES)
    record_page = tasks.reports.record_page
    outage = iter([True, True, False])

    def store_comes_back(payload: dict[str, str]) -> int:
        if next(outage):
            raise StoreUnavailable("the job store is unreachable (OperationalError)")
        assert len(spooled_pages()) == 1  # on disk before the store held it
        return record_page(payload)

    monkeypatch.setattr(tasks.reports, "record_page", store_comes_back)
    monkeypatch.setattr(tasks.reports, "sleep", lambda _s: None)

    tasks.reports.poll_fivec_reports()

    assert statuses() == [DeliveryStatus.DELIVERED] * 3
    assert spooled_pages() == []


def test_a_page_the_store_could_not_take_waits_in_the_spool_for_the_sweep(
    sandbox: TestClient, monkeypatch: pytest.MonkeyPatch, settings_env: SettingsEnv
) -> None:
    submitted_fivec_job("30911175558604", PHONES)
    queue_reports(sandbox, "30911175558604", PHONES)
    settings_env.setenv("HERALD_STORE_RETRY_S", "0.1")

    def store_away(_payload: dict[str, str]) -> int:
        raise StoreUnavailable("the job store is unreachable (OperationalError)")

    with monkeypatch.context() as patched:
        patched.setattr(tasks.reports, "record_page", store_away)
        outcome = tasks.reports.poll_fivec_reports()

    assert outcome == "store unreachable: page spooled"
    left_at_vendor = clients.fivec_adapter(get_settings()).fetch_report_body()
    assert parse_report_records(left_at_vendor) == []  # only the spool has it now
    assert len(spooled_pages()) == 1
    assert pushes_stored() == 0

    sweep()

    assert statuses() == [DeliveryStatus.DELIVERED] * 3
    assert spooled_pages() == []


def test_a_spooled_page_the_store_already_holds_is_not_stored_twice(
    sandbox: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker killed between the commit and removing the page from the spool."""
    submitted_fivec_job("30911175558605", PHONES)
    queue_reports(sandbox, "30911175558605", PHONES)
    monkeypatch.setattr(tasks.reports.Spool, "remove", lambda _self, _path: None)

    tasks.reports.poll_fivec_reports()
    assert len(spooled_pages()) == 1
    monkeypatch.undo()
    sweep()

    assert pushes_stored() == 1
    assert spooled_pages() == []
    assert statuses() == [DeliveryStatus.DELIVERED] * 3


def test_the_next_poll_imports_what_an_earlier_one_spooled(sandbox: TestClient) -> None:
    submitted_fivec_job("30911175558606", PHONES)
    body = ";".join(f"30911175558606,{p},DELIVRD,2026-01-01 08:00:00" for p in PHONES).encode()
    page = {
        "fetched_at": "2026-01-01T00:00:01+00:00",
        "body_base64": base64.b64encode(body).decode(),
        "bytes": str(len(body)),
        "encoding": "utf-8",
    }
    tasks.reports.report_spool().write(page, now=utcnow())

    tasks.reports.poll_fivec_reports()

    assert spooled_pages() == []
    assert statuses() == [DeliveryStatus.DELIVERED] * 3
