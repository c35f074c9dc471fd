"""Finding messages (in-process API, SQLite and PostgreSQL): `GET /v1/messages` with its
filters and cursor, a job's counts and progress, and its recipients a page at a time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.stored_jobs import T0, move, phones, store_job
from worker.api import api
from worker.enums import Channel, DeliveryStatus
from worker.store import get_engine, session_scope, status_counts_of_jobs

pytestmark = pytest.mark.usefixtures("store_url")


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(api) as test_client:
        yield test_client


def ids(client: TestClient, **params: Any) -> list[str]:
    response = client.get("/v1/messages", params=params)
    assert response.status_code == 200, response.text
    return [job["id"] for job in response.json()["jobs"]]


def every_page(client: TestClient, path: str, key: str, **params: Any) -> list[list[Any]]:
    """Each page of a cursor-paged list, following `next` until it is null."""
    pages: list[list[Any]] = []
    after: str | None = None
    while True:
        response = client.get(path, params={**params, **({"after": after} if after else {})})
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body[key])
        after = body["next"]
        if after is None:
            return pages


def test_jobs_are_listed_newest_first_with_their_counts_and_progress(client: TestClient) -> None:
    older = store_job(phones(3), at=T0)
    newer = store_job(phones(1, 10), at=T0 + timedelta(minutes=1))
    move(older, DeliveryStatus.DELIVERED, phones=phones(1))
    move(older, DeliveryStatus.FAILED, phones=phones(1, 1))
    move(older, DeliveryStatus.SUBMITTED, phones=phones(1, 2))

    body = client.get("/v1/messages").json()

    assert [job["id"] for job in body["jobs"]] == [newer, older]
    assert body["next"] is None
    listed = body["jobs"][1]
    assert listed["counts"] == {"delivered": 1, "failed": 1, "submitted": 1}
    assert (listed["total"], listed["progress"], listed["status"]) == (3, 66.6, "submitted")
    assert listed["created_at"] == "2026-11-11T02:00:00Z"
    assert "recipients" not in listed


def test_each_filter_keeps_only_the_jobs_it_names(client: TestClient) -> None:
    sms = store_job(phones(2), at=T0, idempotency_key="order-7")
    mms = store_job(phones(1, 2), at=T0 + timedelta(hours=1), channel=Channel.MMS)
    chuangrui = store_job(phones(2, 3), at=T0 + timedelta(hours=2), vendor="chuangrui")
    move(sms, DeliveryStatus.UNDELIVERED, phones=phones(1))
    move(chuangrui, DeliveryStatus.DELIVERED)

    assert ids(client, channel="mms") == [mms]
    assert ids(client, vendor="chuangrui") == [chuangrui]
    assert ids(client, idempotency_key="order-7") == [sms]
    assert ids(client, phone="+86 138 0000 0003") == [chuangrui]
    assert ids(client, status="undelivered") == [sms]
    assert ids(client, status="queued") == [mms, sms]
    assert ids(client, status=["undelivered", "delivered"]) == [chuangrui, sms]
    # phone and status together: that number's recipient in that status
    assert ids(client, phone="13800000000", status="undelivered") == [sms]
    assert ids(client, phone="13800000001", status="undelivered") == []
    assert ids(client, created_from="2026-11-11T11:00:00+08:00") == [chuangrui, mms]
    assert ids(client, created_to="2026-11-11T03:00:00Z") == [sms]
    assert ids(client, created_from="2026-11-11T03:00:00Z", created_to="2026-11-11T04:00:00Z") == [
        mms
    ]
    assert ids(client, channel="sms", vendor="veesing", status="queued") == [sms]


def test_pages_of_jobs_follow_each_other_without_repeat_or_gap(client: TestClient) -> None:
    # Equal acceptance times in threes, so the cursor must break ties by id.
    stored = [store_job(phones(1, n), at=T0 + timedelta(seconds=n // 3)) for n in range(23)]

    pages = every_page(client, "/v1/messages", "jobs", limit=4)
    store_job(phones(1, 99), at=T0 + timedelta(days=1))  # accepted meanwhile: not in these pages

    listed = [job["id"] for page in pages for job in page]
    assert [len(page) for page in pages] == [4, 4, 4, 4, 4, 3]
    assert sorted(listed) == sorted(stored)
    assert len(set(listed)) == len(listed)
    times = [(job["created_at"], job["id"]) for page in pages for job in page]
    assert times == sorted(times, reverse=True)


def test_a_filtered_list_pages_the_same_way(client: TestClient) -> None:
    failed = []
    for n in range(10):
        job_id = store_job(phones(2, 2 * n), at=T0 + timedelta(minutes=n))
        if n % 2:
            move(job_id, DeliveryStatus.FAILED, phones=phones(1, 2 * n))
            failed.append(job_id)

    pages = every_page(client, "/v1/messages", "jobs", status="failed", limit=2)

    assert [job["id"] for page in pages for job in page] == failed[::-1]


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"after": "not-a-cursor"}, "after"),
        ({"after": "WyJyZWNpcGllbnRzIiw1XQ"}, "after"),  # a recipients cursor
        ({"status": "lost"}, "status"),
        ({"channel": "fax"}, "channel"),
        ({"vendor": "nobody"}, "vendor"),
        ({"phone": "12345"}, "phone"),
        ({"created_from": "2026-11-11T10:00:00"}, "created_from"),
        ({"created_to": "yesterday"}, "created_to"),
        ({"idempotency_key": "k" * 129}, "idempotency_key"),
        ({"idempotency_key": "order\x007"}, "idempotency_key"),  # PostgreSQL refuses NUL
        ({"created_from": "0001-01-01T00:00:00+08:00"}, "created_from"),  # before UTC's year 1
    ],
)
def test_a_parameter_out_of_bounds_is_refused_naming_it(
    client: TestClient, params: dict[str, Any], name: str
) -> None:
    response = client.get("/v1/messages", params=params)

    assert response.status_code == 422
    assert [problem["loc"][:2] for problem in response.json()["detail"]] == [["query", name]]


def test_a_job_answers_its_counts_progress_and_only_a_first_page_of_recipients(
    client: TestClient,
) -> None:
    numbers = phones(250)
    job_id = store_job(numbers)
    move(job_id, DeliveryStatus.DELIVERED, phones=numbers[:200])
    move(job_id, DeliveryStatus.CANCELLED, phones=numbers[200:249])

    job = client.get(f"/v1/messages/{job_id}").json()

    assert job["counts"] == {"cancelled": 49, "delivered": 200, "queued": 1}
    assert (job["total"], job["progress"], job["status"]) == (250, 99.6, "queued")
    assert [r["phone"] for r in job["recipients"]] == numbers[:100]
    rest = every_page(
        client, f"/v1/messages/{job_id}/recipients", "recipients", after=job["recipients_next"]
    )
    assert [r["phone"] for page in rest for r in page] == numbers[100:]


def test_a_job_whose_recipients_all_fit_says_so_and_is_at_100_when_all_are_final(
    client: TestClient,
) -> None:
    job_id = store_job(phones(2))
    move(job_id, DeliveryStatus.UNDELIVERED)

    job = client.get(f"/v1/messages/{job_id}").json()

    assert (job["progress"], job["status"], job["recipients_next"]) == (100.0, "completed", None)
    assert len(job["recipients"]) == 2


def test_recipients_are_paged_in_job_order_and_filtered_by_status(client: TestClient) -> None:
    numbers = phones(30)
    job_id = store_job(numbers)
    failed = numbers[::3]
    move(job_id, DeliveryStatus.FAILED, phones=failed)
    path = f"/v1/messages/{job_id}/recipients"

    everyone = every_page(client, path, "recipients", limit=7)
    only_failed = every_page(client, path, "recipients", limit=4, status="failed")

    assert [len(page) for page in everyone] == [7, 7, 7, 7, 2]
    assert [r["phone"] for page in everyone for r in page] == numbers
    assert [r["phone"] for page in only_failed for r in page] == failed
    assert {r["status"] for page in only_failed for r in page} == {"failed"}


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"limit": 1001}, "limit"),
        ({"limit": 0}, "limit"),
        ({"after": "WyJyZWNpcGllbnRzIiwtMV0"}, "after"),  # ["recipients", -1]
        ({"status": "gone"}, "status"),
    ],
)
def test_a_recipients_parameter_out_of_bounds_is_refused_naming_it(
    client: TestClient, params: dict[str, Any], name: str
) -> None:
    job_id = store_job(phones(1))

    response = client.get(f"/v1/messages/{job_id}/recipients", params=params)

    assert response.status_code == 422
    assert [problem["loc"][:2] for problem in response.json()["detail"]] == [["query", name]]


@pytest.mark.parametrize("job_id", ["nope", "ab%00cd"])
def test_the_recipients_of_an_unknown_job_are_404(client: TestClient, job_id: str) -> None:
    assert client.get(f"/v1/messages/{job_id}/recipients").status_code == 404


def test_the_counts_of_many_jobs_are_one_query() -> None:
    first = store_job(phones(3))
    second = store_job(phones(2, 3))
    move(first, DeliveryStatus.DELIVERED, phones=phones(2))
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(args[2])

    engine = get_engine()
    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        with session_scope() as session:
            counts = status_counts_of_jobs(session, [first, second, "no-such-job"])
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)

    assert counts == {
        first: {DeliveryStatus.DELIVERED: 2, DeliveryStatus.QUEUED: 1},
        second: {DeliveryStatus.QUEUED: 2},
    }
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1
