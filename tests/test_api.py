"""Unit tests of the HTTP API (in-process), against a fresh store and this run's Redis."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlmodel import func, select

from tests.conftest import CALLBACK_TOKEN
from tests.support import SettingsEnv
from worker.api import api
from worker.log_redaction import RedactLogs
from worker.store import Job, VendorPush, session_scope

pytestmark = pytest.mark.usefixtures("store_url", "redis_url")
GOOD = {"to": ["13800138000"], "content": "【Herald】您好"}


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(api) as test_client:
        yield test_client


def count(model: type[Job] | type[VendorPush]) -> int:
    with session_scope() as session:
        return session.exec(select(func.count()).select_from(model)).one()


def test_a_valid_sms_is_accepted_and_can_be_read_back(client: TestClient) -> None:
    response = client.post("/v1/sms", json={**GOOD, "to": ["13800138000", "+86 139 0013 9000"]})

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    job = client.get(f"/v1/messages/{body['id']}").json()
    assert job["content"] == GOOD["content"]
    assert [(r["phone"], r["status"]) for r in job["recipients"]] == [
        ("13800138000", "queued"),
        ("13900139000", "queued"),
    ]


@pytest.mark.parametrize(
    ("change", "location", "words"),
    [
        ({"to": ["1380013800"]}, ["body", "to", 0], "mainland China mobile number"),
        ({"to": ["23800138000"]}, ["body", "to", 0], "mainland China mobile number"),
        ({"to": []}, ["body", "to"], "at least 1"),
        ({"content": "【Herald】生日快乐🎂"}, ["body", "content"], "emoji"),
        ({"content": "您好，没有签名"}, ["body", "content"], "【signature】"),
        ({"send_at": "2026-12-01T10:00:00"}, ["body", "send_at"], "timezone"),
        ({"priority": "high"}, ["body", "priority"], "Extra inputs"),
    ],
)
def test_a_request_that_breaks_a_rule_is_refused_naming_the_field_and_stores_nothing(
    client: TestClient, change: dict[str, object], location: list[object], words: str
) -> None:
    response = client.post("/v1/sms", json={**GOOD, **change})

    assert response.status_code == 422
    problems = response.json()["detail"]
    assert any(p["loc"] == location and words in p["msg"] for p in problems), problems
    assert count(Job) == 0


def test_a_default_signature_is_added_to_content_without_one(
    client: TestClient, settings_env: SettingsEnv
) -> None:
    settings_env.setenv("HERALD_SMS_SIGNATURE", "Herald")

    response = client.post("/v1/sms", json={**GOOD, "content": "您的验证码是 1234"})

    assert response.status_code == 202
    job = client.get(f"/v1/messages/{response.json()['id']}").json()
    assert job["content"] == "【Herald】您的验证码是 1234"


def test_the_same_idempotency_key_answers_the_first_job(client: TestClient) -> None:
    first = client.post("/v1/sms", json={**GOOD, "idempotency_key": "order-7"})
    second = client.post(
        "/v1/sms", json={**GOOD, "to": ["13900139000"], "idempotency_key": "order-7"}
    )

    assert first.json()["id"] == second.json()["id"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert count(Job) == 1


def test_an_unknown_job_is_404(client: TestClient) -> None:
    assert client.get("/v1/messages/nope").status_code == 404


def test_a_queued_job_can_be_cancelled_once(client: TestClient) -> None:
    job_id = client.post("/v1/sms", json={**GOOD, "send_at": "2099-01-01T00:00:00+08:00"}).json()[
        "id"
    ]

    first = client.post(f"/v1/messages/{job_id}/cancel")
    second = client.post(f"/v1/messages/{job_id}/cancel")

    assert (first.status_code, first.json()["status"]) == (200, "cancelled")
    assert second.status_code == 409


def test_a_push_with_a_wrong_token_is_refused_and_not_stored(client: TestClient) -> None:
    receipt = {"mobile": "13800138000", "taskid": "1", "status": "1", "code": "DELIVRD"}

    response = client.post("/callbacks/veesing/sms/wrong-token", data=receipt)

    assert response.status_code == 403
    assert count(VendorPush) == 0


def test_a_push_with_the_right_token_is_stored_as_received(client: TestClient) -> None:
    receipt = {"mobile": "13800138000", "taskid": "1", "status": "1", "code": "DELIVRD"}

    response = client.post(f"/callbacks/veesing/sms/{CALLBACK_TOKEN}", data=receipt)

    assert response.status_code == 200
    with session_scope() as session:
        push = session.exec(select(VendorPush)).one()
    assert (push.vendor, push.kind, push.payload) == ("veesing", "sms", receipt)


def test_access_logs_never_show_the_callback_token() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1", "POST", f"/callbacks/veesing/sms/{CALLBACK_TOKEN}", "1.1", 200),
        None,
    )

    RedactLogs().filter(record)

    assert CALLBACK_TOKEN not in record.getMessage()
    assert "/callbacks/veesing/sms/***" in record.getMessage()


def test_suppressions_can_be_added_listed_and_removed(client: TestClient) -> None:
    added = client.post("/v1/suppressions", json={"phone": "+8613800138000", "reason": "asked"})
    listed = client.get("/v1/suppressions")
    removed = client.delete("/v1/suppressions/13800138000")
    again = client.delete("/v1/suppressions/13800138000")

    assert added.status_code == 201
    assert [(s["phone"], s["reason"]) for s in listed.json()] == [("13800138000", "asked")]
    assert (removed.status_code, again.status_code) == (204, 404)
    assert client.get("/v1/suppressions").json() == []


def test_a_suppression_with_a_bad_number_is_refused(client: TestClient) -> None:
    response = client.post("/v1/suppressions", json={"phone": "12345"})

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "phone"]


def signed_report(secret: str, **fields: str) -> dict[str, str]:
    import hashlib
    import time
    import uuid

    random, timestamp = uuid.uuid4().hex, str(int(time.time()))
    name = hashlib.md5((secret + random + timestamp).encode()).hexdigest()
    return {"name": name, "random": random, "timestamp": timestamp, **fields}


def test_a_chuangrui_report_replayed_with_its_signature_is_refused(
    client: TestClient, settings_env: SettingsEnv
) -> None:
    settings_env.setenv("HERALD_CHUANGRUI_ACCESS_SECRET", "s3cret")
    report = signed_report(
        "s3cret", sendid="1", mobile="13800138000", state="DELIVRD", time="2026-11-24 10:00:00"
    )

    first = client.post("/callbacks/chuangrui/report", data=report)
    replay = client.post("/callbacks/chuangrui/report", data={**report, "state": "UNDELIV"})

    assert (first.status_code, replay.status_code) == (200, 403)
    assert "replayed" in replay.text
    assert count(VendorPush) == 1


def test_a_chuangrui_report_with_a_wrong_pwd_is_refused(
    client: TestClient, settings_env: SettingsEnv
) -> None:
    settings_env.setenv("HERALD_CHUANGRUI_ACCESS_SECRET", "s3cret")
    settings_env.setenv("HERALD_CHUANGRUI_REPORT_PWD", "right")
    report = signed_report("s3cret", pwd="wrong", sendid="1", mobile="13800138000", state="X")

    response = client.post("/callbacks/chuangrui/report", data=report)

    assert response.status_code == 403
    assert count(VendorPush) == 0
