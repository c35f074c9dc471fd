"""The operator page (`/ui`, worker/ui/): each page rendered by the real application over a real
SQLite store (and the test run's Redis for breakers), numbers masked unless asked, times in the
display zone, and the API's keys required the way a browser can give them (HTTP Basic)."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
from fastapi.testclient import TestClient
from sqlmodel import col, select

from tests.support import SettingsEnv, free_port
from worker.api import api
from worker.breaker import breaker_key, open_breaker
from worker.enums import Channel, DeliveryStatus, Purpose
from worker.redis_client import redis_client
from worker.store import (
    Delivery,
    NewJob,
    add_inbound,
    create_api_key,
    create_job,
    move_deliveries,
    record_balance,
    revoke_api_key,
    session_scope,
    suppress,
    utcnow,
)
from worker.ui.masking import mask_phone
from worker.ui.vendors import breaker_of

pytestmark = [
    pytest.mark.usefixtures("store_url", "redis_url"),
    pytest.mark.parametrize("store_url", ["sqlite"], indirect=True),
]
KEY = "ui-key-0123456789abcdef"
CREATED = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)  # 16:00 in Shanghai


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(api) as test_client:
        yield test_client


@pytest.fixture
def with_key(settings_env: SettingsEnv) -> None:
    settings_env.setenv("HERALD_API_KEYS", f"ops={KEY}")


def basic(password: str, user: str = "operator") -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def phones(count: int, start: int = 0) -> list[str]:
    return [f"139{n:08d}" for n in range(start, start + count)]


def stored_job(count: int, *, created: datetime = CREATED, **extra: object) -> str:
    fields: dict[str, object] = {
        "channel": Channel.SMS,
        "vendor": "veesing",
        "content": "【Herald】您的订单已发货",
        "phones": phones(count),
        "api_key_name": "shop",
        **extra,
    }
    with session_scope() as session:
        job, _ = create_job(session, new=NewJob(**fields), now=created)  # type: ignore[arg-type]
        return job.id


def move_first(job_id: str, count: int, to: DeliveryStatus, **values: object) -> None:
    with session_scope() as session:
        ids = list(
            session.exec(
                select(Delivery.id)
                .where(col(Delivery.job_id) == job_id, col(Delivery.status) == "queued")
                .order_by(col(Delivery.id))
                .limit(count)
            )
        )
        move_deliveries(
            session,
            where=col(Delivery.id).in_(ids),
            from_statuses=[DeliveryStatus.QUEUED],
            to=to,
            now=utcnow(),
            detail="test",
            **values,
        )


def shown_counts(html: str) -> dict[str, int]:
    return {s: int(n) for s, n in re.findall(r'data-status="(\w+)" data-count="(\d+)"', html)}


def job_row(html: str, job_id: str) -> str:
    start = html.index(f'data-job="{job_id}"')
    return html[start : html.index("</tr>", start)]


# --- pages -------------------------------------------------------------------------------------


def test_jobs_page_lists_recent_jobs_with_progress_and_counts(client: TestClient) -> None:
    done = stored_job(4)
    move_first(done, 3, DeliveryStatus.DELIVERED)
    move_first(done, 1, DeliveryStatus.FAILED, last_error="refused")
    busy = stored_job(10, created=CREATED + timedelta(minutes=5))
    move_first(busy, 2, DeliveryStatus.DELIVERED)
    move_first(busy, 3, DeliveryStatus.SUBMITTED)

    response = client.get("/ui")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert html.index(busy) < html.index(done)  # newest first
    assert shown_counts(job_row(html, done)) == {"delivered": 3, "failed": 1}
    assert 'data-progress="100"' in job_row(html, done)
    assert "completed" in job_row(html, done)
    assert shown_counts(job_row(html, busy)) == {"queued": 5, "submitted": 3, "delivered": 2}
    assert 'data-progress="20"' in job_row(html, busy)
    assert "2026-11-24 16:00:00" in job_row(html, done)  # Asia/Shanghai
    assert "shop" in job_row(html, done)


def test_jobs_page_is_paginated(client: TestClient) -> None:
    ids = [stored_job(1, created=CREATED + timedelta(seconds=n)) for n in range(27)]

    first = client.get("/ui").text
    second = client.get("/ui", params={"page": 2}).text

    assert ids[26] in first and ids[2] in first and ids[1] not in first
    assert ids[1] in second and ids[0] in second and ids[2] not in second
    assert 'rel="next"' in first and 'rel="next"' not in second


def test_a_jobs_recipients_are_paginated_and_masked(client: TestClient) -> None:
    job_id = stored_job(250)
    move_first(job_id, 10, DeliveryStatus.FAILED, last_error="13900000003 is not a mobile")
    numbers = phones(250)

    first = client.get(f"/ui/jobs/{job_id}").text
    last = client.get(f"/ui/jobs/{job_id}", params={"page": 3}).text

    assert first.count("data-delivery=") == 100
    assert last.count("data-delivery=") == 50
    assert shown_counts(first) == {"queued": 240, "failed": 10}
    assert 'data-progress="4"' in first
    assert "139****0000" in first and mask_phone(numbers[249]) in last
    for page in (first, last):
        assert not any(number in page for number in numbers)
    assert "139****0003 is not a mobile" in first
    assert 'rel="next"' in first and 'rel="next"' not in last


def test_numbers_are_shown_whole_only_when_asked(client: TestClient) -> None:
    job_id = stored_job(3)

    masked = client.get(f"/ui/jobs/{job_id}").text
    shown = client.get(f"/ui/jobs/{job_id}", params={"numbers": "shown"}).text

    assert all(number not in masked for number in phones(3))
    assert all(number in shown for number in phones(3))
    assert "Show numbers" in masked and "Mask numbers" in shown


def test_a_jobs_recipients_can_be_filtered_by_status(client: TestClient) -> None:
    job_id = stored_job(5)
    move_first(job_id, 2, DeliveryStatus.FAILED, last_error="refused")

    html = client.get(f"/ui/jobs/{job_id}", params={"status": "failed"}).text

    assert html.count("data-delivery=") == 2
    assert shown_counts(html) == {"queued": 3, "failed": 2}


@pytest.mark.parametrize(
    "extra",
    [
        {"purpose": Purpose.VERIFICATION, "content": "【Herald】验证码 482913"},
        {
            "channel": Channel.VOICE,
            "purpose": Purpose.NOTIFICATION,
            "content": "482913",
            "payload": {"template_id": "724", "variables": "482913", "kind": "code"},
        },
    ],
)
def test_a_one_time_code_is_never_shown(client: TestClient, extra: dict[str, object]) -> None:
    job_id = stored_job(1, **extra)

    html = client.get(f"/ui/jobs/{job_id}", params={"numbers": "shown"}).text

    assert "482913" not in html
    assert "hidden: a one-time code" in html


def test_an_unknown_job_is_404(client: TestClient) -> None:
    response = client.get(f"/ui/jobs/{'f' * 32}")

    assert response.status_code == 404
    assert "No such job" in response.text


def test_a_job_under_way_refreshes_itself_and_a_finished_one_does_not(client: TestClient) -> None:
    job_id = stored_job(2)
    assert 'id="job-summary" data-live' in client.get(f"/ui/jobs/{job_id}").text

    move_first(job_id, 2, DeliveryStatus.DELIVERED)

    assert 'id="job-summary">' in client.get(f"/ui/jobs/{job_id}").text


def test_deferred_page_counts_recipients_by_rule(client: TestClient) -> None:
    job_id = stored_job(5)
    later = utcnow() + timedelta(minutes=1)
    minute = "held by the one-message-per-minute rule until 2026-11-24T08:01:00+00:00"
    move_first(job_id, 3, DeliveryStatus.DEFERRED, last_error=minute, not_before=later)
    move_first(
        job_id,
        1,
        DeliveryStatus.DEFERRED,
        last_error="veesing: HTTP 503 (attempt 1)",
        not_before=later,
    )

    html = client.get("/ui/deferred").text
    only_minute = client.get("/ui/deferred", params={"rule": "minute"}).text

    rule_counts = dict(
        re.findall(
            r'data-rule="(\w+)"[^>]*>\s*<td><a[^>]*>[^<]*</a></td>\s*'
            r'<td class="num" data-count="(\d+)"',
            html,
        )
    )
    assert rule_counts == {
        "minute": "3",
        "daily_cap": "0",
        "pacing": "0",
        "backoff": "1",
        "breaker": "0",
        "other": "0",
        "all": "4",
    }
    assert html.count("data-delivery=") == 4
    assert only_minute.count("data-delivery=") == 3
    assert all(number not in html for number in phones(5))


def test_vendors_page_shows_balance_breaker_and_todays_sends_against_the_cap(
    client: TestClient, settings_env: SettingsEnv
) -> None:
    settings_env.setenv("HERALD_LIMITS", '{"veesing:sms": {"per_account_daily": 8}}')
    job_id = stored_job(4)
    move_first(job_id, 2, DeliveryStatus.SUBMITTED, submitted_at=utcnow())
    with session_scope() as session:
        record_balance(session, product="veesing:sms", balance="1234.50", error=None, now=CREATED)
    redis = redis_client()
    open_breaker(redis, vendor="chuangrui", channel="sms", cooldown_s=300, reason="wrong pwd")
    try:
        html = client.get("/ui/vendors").text
    finally:
        redis.delete(breaker_key("chuangrui", "sms"))

    def row(product: str) -> str:
        start = html.index(f'data-product="{product}"')
        return html[start : html.index("</tr>", start)]

    assert "1234.50" in row("veesing:sms")
    assert "2026-11-24 16:00:00" in row("veesing:sms")
    assert 'data-sent="2"' in row("veesing:sms") and "25%" in row("veesing:sms")
    assert 'data-breaker="closed"' in row("veesing:sms")
    assert 'data-breaker="open"' in row("chuangrui:sms") and "wrong pwd" in row("chuangrui:sms")
    assert 'data-sent="0"' in row("fivec:mms")


def test_replies_page_lists_replies_newest_first_masked(client: TestClient) -> None:
    with session_scope() as session:
        for n, content in enumerate(["好的", "TD"]):
            add_inbound(
                session,
                vendor="chuangrui",
                phone=phones(1, start=n)[0],
                content=content,
                vendor_ref=None,
                received_at=CREATED + timedelta(minutes=n),
                now=CREATED,
            )

    html = client.get("/ui/replies").text

    assert html.index("TD") < html.index("好的")
    assert "2026-11-24 16:01:00" in html
    assert mask_phone(phones(1)[0]) in html and phones(1)[0] not in html


def test_suppressions_page_lists_suppressed_numbers_masked(client: TestClient) -> None:
    with session_scope() as session:
        suppress(session, phone="13812345678", reason="replied TD", now=CREATED)

    masked = client.get("/ui/suppressions").text
    shown = client.get("/ui/suppressions", params={"numbers": "shown"}).text

    assert "138****5678" in masked and "13812345678" not in masked
    assert "replied TD" in masked
    assert "13812345678" in shown


def test_what_people_wrote_is_shown_as_text_never_as_markup(client: TestClient) -> None:
    with session_scope() as session:
        add_inbound(
            session,
            vendor="veesing",
            phone="13812345678",
            content='<script>alert("x")</script>',
            vendor_ref=None,
            received_at=None,
            now=CREATED,
        )

    html = client.get("/ui/replies").text

    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html


def test_a_breaker_is_unknown_while_redis_does_not_answer() -> None:
    nobody = redis.Redis(port=free_port(), socket_connect_timeout=1)

    breaker = breaker_of(nobody, "veesing:sms")

    assert breaker.error is not None and "ConnectionError" in breaker.error
    assert not breaker.open


def test_times_follow_the_display_zone(client: TestClient, settings_env: SettingsEnv) -> None:
    job_id = stored_job(1)
    settings_env.setenv("HERALD_DISPLAY_TZ", "Europe/London")

    html = client.get("/ui").text

    assert "2026-11-24 08:00:00" in job_row(html, job_id)
    assert "Times in Europe/London" in html


def test_pages_load_nothing_from_elsewhere(client: TestClient) -> None:
    stored_job(1)
    for path in ["/ui", "/ui/deferred", "/ui/vendors", "/ui/replies", "/ui/suppressions"]:
        response = client.get(path)
        assert response.status_code == 200, path
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["Cache-Control"] == "no-store"
        assert not re.search(r"(src|href)=\"(https?:)?//", response.text), path
    assert "data-live" in client.get("/ui/static/live.js").text
    assert client.get("/ui/static/ui.css").status_code == 200


def test_ui_is_not_in_the_api_schema(client: TestClient) -> None:
    assert not [p for p in client.get("/openapi.json").json()["paths"] if p.startswith("/ui")]


# --- who may open it ---------------------------------------------------------------------------


@pytest.mark.usefixtures("with_key")
@pytest.mark.parametrize(
    "path",
    [
        "/ui",
        f"/ui/jobs/{'a' * 32}",
        "/ui/deferred",
        "/ui/vendors",
        "/ui/replies",
        "/ui/suppressions",
    ],
)
def test_without_credentials_every_page_is_401_with_a_basic_challenge(
    client: TestClient, path: str
) -> None:
    stored_job(1)

    response = client.get(path)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Basic realm="herald operators"')
    assert "139" not in response.text


@pytest.mark.usefixtures("with_key")
@pytest.mark.parametrize(
    "headers",
    [basic(KEY + "x"), basic("", user=KEY), {"Authorization": f"Bearer {KEY}x"}],
)
def test_a_wrong_key_is_401(client: TestClient, headers: dict[str, str]) -> None:
    assert client.get("/ui", headers=headers).status_code == 401


@pytest.mark.usefixtures("with_key")
def test_the_api_key_opens_the_page_as_basic_password_or_bearer(client: TestClient) -> None:
    assert client.get("/ui", headers=basic(KEY)).status_code == 200
    assert client.get("/ui", headers=basic(KEY, user="anyone")).status_code == 200
    assert client.get("/ui", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200


@pytest.mark.usefixtures("with_key")
def test_a_stored_key_opens_the_page_until_it_is_revoked(client: TestClient) -> None:
    with session_scope() as session:
        key = create_api_key(session, name="night-shift", now=utcnow())
    assert client.get("/ui/vendors", headers=basic(key)).status_code == 200

    with session_scope() as session:
        revoke_api_key(session, name="night-shift", now=utcnow())

    assert client.get("/ui/vendors", headers=basic(key)).status_code == 403


def test_keyless_on_loopback_the_page_opens_without_credentials(client: TestClient) -> None:
    assert client.get("/ui").status_code == 200


# --- helpers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phone", "masked"),
    [("13800138000", "138****8000"), ("8613800138000", "861****8000"), ("1380013", "****")],
)
def test_mask_phone(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked
