"""Unit tests of personalised SMS (in-process API, fresh store): `{placeholders}` filled from
each recipient's values, every one checked when the job is accepted, the rendered text stored
per recipient; and how a claimed batch is split into vendor calls (tasks/batching.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import func, select

from tasks.batching import batches_by_text
from tests.support import SettingsEnv
from worker.api import api
from worker.enums import Channel, DeliveryStatus
from worker.store import Delivery, Job, deliveries_of, session_scope

TEMPLATE = "【Herald】尊敬的{name}，您的验证码是{code}"


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(api) as test_client:
        yield test_client


def stored_texts(job_id: str) -> dict[str, str | None]:
    with session_scope() as session:
        return {d.phone: d.text for d in deliveries_of(session, job_id=job_id)}


def jobs_stored() -> int:
    with session_scope() as session:
        return session.exec(select(func.count()).select_from(Job)).one()


def problems(response: Any) -> list[tuple[list[object], str]]:
    assert response.status_code == 422, response.text
    return [(p["loc"], p["msg"]) for p in response.json()["detail"]]


@pytest.mark.usefixtures("store_url", "redis_url")
def test_each_recipient_gets_its_own_rendered_text_and_plain_numbers_still_work(
    client: TestClient,
) -> None:
    response = client.post(
        "/v1/sms",
        json={
            "to": [
                {"phone": "13800138000", "values": {"name": "张三", "code": 4821}},
                {"phone": "+86 139 0013 9000", "values": {"name": "李四", "code": "7730"}},
            ],
            "content": TEMPLATE,
        },
    )

    assert response.status_code == 202, response.text
    assert stored_texts(response.json()["id"]) == {
        "13800138000": "【Herald】尊敬的张三，您的验证码是4821",
        "13900139000": "【Herald】尊敬的李四，您的验证码是7730",
    }
    plain = client.post("/v1/sms", json={"to": ["13700137000"], "content": "【Herald】您好"})
    assert plain.status_code == 202
    assert stored_texts(plain.json()["id"]) == {"13700137000": None}


@pytest.mark.usefixtures("store_url", "redis_url")
def test_a_missing_value_is_refused_naming_the_row_and_the_placeholder(
    client: TestClient,
) -> None:
    recipients: list[object] = [
        {"phone": f"1380013800{i}", "values": {"name": "张三", "code": "1"}} for i in range(5)
    ]
    recipients[3] = {"phone": "13800138003", "values": {"code": "1", "name": ""}}
    recipients[4] = "13800138004"

    response = client.post("/v1/sms", json={"to": recipients, "content": TEMPLATE})

    assert problems(response) == [
        (["body", "to", 3, "values", "name"], "no value for the placeholder {name}"),
        (["body", "to", 4, "values", "name"], "no value for the placeholder {name}"),
        (["body", "to", 4, "values", "code"], "no value for the placeholder {code}"),
    ]
    assert jobs_stored() == 0


@pytest.mark.usefixtures("store_url", "redis_url")
def test_the_length_emoji_and_signature_rules_apply_to_each_rendered_text(
    client: TestClient, settings_env: SettingsEnv
) -> None:
    settings_env.setenv("HERALD_SMS_MAX_CHARS", "20")
    response = client.post(
        "/v1/sms",
        json={
            "to": [
                {"phone": "13800138000", "values": {"sign": "【Herald】", "name": "王"}},
                {"phone": "13900139000", "values": {"sign": "【Herald】", "name": "王" * 20}},
                {"phone": "13700137000", "values": {"sign": "【Herald】", "name": "🎂"}},
                {"phone": "13600136000", "values": {"sign": "Herald", "name": "王"}},
            ],
            "content": "{sign}您好，{name}",
        },
    )

    found = problems(response)
    assert (["body", "to", 1], "its text: at most 20 characters, got 31") in found
    assert any(loc == ["body", "to", 2, "values", "name"] and "emoji" in m for loc, m in found)
    assert any(loc == ["body", "to", 3] and "【signature】" in m for loc, m in found)
    assert not any(loc[:3] == ["body", "to", 0] for loc, _ in found)
    assert jobs_stored() == 0


@pytest.mark.usefixtures("store_url", "redis_url")
def test_a_default_signature_is_added_before_rendering(
    client: TestClient, settings_env: SettingsEnv
) -> None:
    settings_env.setenv("HERALD_SMS_SIGNATURE", "Herald")

    response = client.post(
        "/v1/sms",
        json={"to": [{"phone": "13800138000", "values": {"code": "1"}}], "content": "码{code}"},
    )

    assert response.status_code == 202, response.text
    assert stored_texts(response.json()["id"]) == {"13800138000": "【Herald】码1"}


def delivery(phone: str, text: str | None, *, alone: bool = False, mms: bool = False) -> Delivery:
    return Delivery(
        job_id="j",
        phone=phone,
        vendor="veesing",
        channel=Channel.MMS if mms else Channel.SMS,
        text=text,
        send_alone=alone,
        status=DeliveryStatus.CLAIMED,
    )


def test_each_distinct_text_is_its_own_call_and_identical_texts_go_together() -> None:
    claimed = [
        delivery("13800138000", "A"),
        delivery("13800138001", "B"),
        delivery("13800138002", "A"),
        delivery("13800138003", "A", alone=True),
        delivery("13800138004", "B"),
    ]

    batches = batches_by_text(claimed)

    assert [[d.phone[-1] for d in batch] for batch in batches] == [["0", "2"], ["1", "4"], ["3"]]


def test_a_job_without_personal_texts_is_one_call_and_mms_texts_are_never_split() -> None:
    plain = [delivery("13800138000", None), delivery("13800138001", None)]
    fivec = [delivery("13800138000", "A", mms=True), delivery("13800138001", "B", mms=True)]

    assert batches_by_text(plain) == [plain]
    assert batches_by_text(fivec) == [fivec]
    assert batches_by_text([]) == []
