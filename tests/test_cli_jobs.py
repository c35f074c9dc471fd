"""`herald jobs` and `herald status` (click's CliRunner) against a real store, SQLite and
PostgreSQL: filters and pages like the API, counts before recipients, and `--watch` following a
job that a thread drives to its end."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from click.testing import CliRunner, Result
from sqlmodel import Session

from tests.stored_jobs import T0, move, phones, store_job
from worker.cli import main
from worker.cli_jobs import WATCH_TIMED_OUT
from worker.enums import Channel, DeliveryStatus
from worker.store import status_counts_of_jobs

pytestmark = pytest.mark.usefixtures("store_url")


def herald(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_herald_jobs_lists_recent_jobs_with_counts_in_the_display_zone() -> None:
    job_id = store_job(phones(3), at=T0)
    move(job_id, DeliveryStatus.DELIVERED, phones=phones(2))

    result = herald("jobs")

    assert result.exit_code == 0, result.output
    (row,) = [line for line in result.output.splitlines() if job_id in line]
    assert "2026-11-11 10:00:00 +08:00" in row  # 02:00 UTC in Asia/Shanghai
    assert "66.6%" in row
    assert "queued 1, delivered 2" in row


def test_herald_jobs_filters_and_pages_like_the_api() -> None:
    mms = [
        store_job(phones(1, n), at=T0 + timedelta(minutes=n), channel=Channel.MMS)
        for n in (1, 2, 3)
    ]
    store_job(phones(1, 9), at=T0 + timedelta(minutes=9))

    first = json.loads(herald("jobs", "--channel", "mms", "--limit", "2", "--json").output)
    second = json.loads(
        herald(
            "jobs", "--channel", "mms", "--limit", "2", "--after", first["next"], "--json"
        ).output
    )

    assert [j["id"] for j in first["jobs"] + second["jobs"]] == mms[::-1]
    assert second["next"] is None
    assert first["jobs"][0]["created_at"] == "2026-11-11T02:03:00Z"  # JSON stays UTC


def test_herald_jobs_reads_a_time_without_offset_in_the_display_zone() -> None:
    early = store_job(phones(1), at=T0)  # 10:00 in Shanghai
    late = store_job(phones(1, 1), at=T0 + timedelta(hours=1))  # 11:00 in Shanghai

    listed = json.loads(herald("jobs", "--created-from", "2026-11-11T10:30", "--json").output)

    assert [j["id"] for j in listed["jobs"]] == [late]
    assert early not in {j["id"] for j in listed["jobs"]}


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--limit", "0"], "--limit"),
        (["--limit", "501"], "--limit"),
        (["--after", "nonsense"], "not a cursor"),
        (["--phone", "12345"], "mainland China mobile number"),
        (["--status", "lost"], "--status"),
    ],
)
def test_herald_jobs_refuses_a_parameter_out_of_bounds(args: list[str], words: str) -> None:
    result = herald("jobs", *args)

    assert result.exit_code == 2
    assert words in result.output


def test_herald_status_prints_counts_first_and_recipients_only_when_asked() -> None:
    job_id = store_job(phones(3))
    move(job_id, DeliveryStatus.FAILED, phones=phones(1))

    plain = herald("status", job_id)
    listed = herald("status", job_id, "--recipients")

    assert plain.exit_code == 0, plain.output
    assert "progress  33.3% final (1 of 3)" in plain.output
    assert "failed" in plain.output and "queued" in plain.output
    assert "13800000000" not in plain.output
    assert f"herald status {job_id} --recipients" in plain.output
    assert listed.exit_code == 0, listed.output
    assert all(number in listed.output for number in phones(3))


def test_herald_status_pages_recipients_with_limit_and_after() -> None:
    numbers = phones(5)
    job_id = store_job(numbers)
    move(job_id, DeliveryStatus.DELIVERED, phones=numbers[1:])
    seen: list[str] = []
    after: list[str] = []
    while True:
        args = ["status", job_id, "--recipients", "--status", "delivered", "--limit", "3"]
        page = json.loads(herald(*args, *after, "--json").output)
        seen += [r["phone"] for r in page["recipients"]]
        if page["next"] is None:
            break
        after = ["--after", page["next"]]

    assert seen == numbers[1:]


def test_herald_status_asks_for_recipients_before_choosing_them() -> None:
    job_id = store_job(phones(1))

    result = herald("status", job_id, "--status", "queued")

    assert result.exit_code == 2
    assert "add --recipients" in result.output


def test_herald_status_json_is_the_api_document() -> None:
    job_id = store_job(phones(2))

    document = json.loads(herald("status", job_id, "--json").output)

    assert document["counts"] == {"queued": 2}
    assert [r["phone"] for r in document["recipients"]] == phones(2)
    assert document["recipients_next"] is None


def test_herald_status_watch_follows_the_job_until_every_recipient_is_final(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    numbers = phones(4)
    job_id = store_job(numbers)
    polled = threading.Event()
    seen: list[dict[DeliveryStatus, int]] = []

    def counts_seen(session: Session, job_ids: list[str]) -> dict[str, dict[DeliveryStatus, int]]:
        counts = status_counts_of_jobs(session, job_ids)
        seen.append(counts[job_id])
        polled.set()
        return counts

    def deliver() -> None:
        polled.wait(timeout=30)  # the watch has read the job while nothing was final
        move(job_id, DeliveryStatus.SUBMITTED)
        move(job_id, DeliveryStatus.DELIVERED, phones=numbers[:3])
        move(job_id, DeliveryStatus.UNDELIVERED, phones=numbers[3:])

    monkeypatch.setattr("worker.cli_jobs.status_counts_of_jobs", counts_seen)
    driver = threading.Thread(target=deliver)
    driver.start()
    try:
        result = herald("status", job_id, "--watch")
    finally:
        driver.join()

    assert result.exit_code == 0, result.output
    assert seen[0] == {DeliveryStatus.QUEUED: 4}
    assert seen[-1] == {DeliveryStatus.DELIVERED: 3, DeliveryStatus.UNDELIVERED: 1}
    assert "4/4" in result.output
    assert "progress  100.0% final (4 of 4)" in result.output
    assert "completed" in result.output


def test_herald_status_watch_gives_up_at_its_timeout_while_recipients_are_open() -> None:
    job_id = store_job(phones(2))
    move(job_id, DeliveryStatus.DELIVERED, phones=phones(1))

    result = herald("status", job_id, "--watch", "--timeout", "0")

    assert result.exit_code == WATCH_TIMED_OUT
    assert "1/2" in result.output


def test_herald_status_watch_json_prints_the_final_document() -> None:
    job_id = store_job(phones(1))
    move(job_id, DeliveryStatus.CANCELLED)

    result = herald("status", job_id, "--watch", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["progress"] == 100.0


def test_herald_status_of_an_unknown_job_exits_1() -> None:
    result = herald("status", "0123456789abcdef")

    assert result.exit_code == 1
    assert "no job 0123456789abcdef" in result.output
