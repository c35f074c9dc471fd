"""Chuangrui pushes: an MO is refused while no MO pwd is set (unless the operator allows it),
and no push is stored with its credentials (worker/api/callbacks.py)."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from tests.support import SettingsEnv
from worker.api import api
from worker.store import VendorPush, session_scope

pytestmark = pytest.mark.usefixtures("store_url", "redis_url")
MO = {"name": "mo-name", "pwd": "mo-pwd-value", "args": "13800138000#@#TD#@#2026-11-24 10:00:00"}


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(api) as test_client:
        yield test_client


def stored() -> list[VendorPush]:
    with session_scope() as session:
        return list(session.exec(select(VendorPush)))


def test_an_mo_push_is_refused_while_no_mo_pwd_is_set(client: TestClient) -> None:
    response = client.post("/callbacks/chuangrui/mo", data=MO)

    assert response.status_code == 403
    assert "HERALD_CHUANGRUI_MO_PWD" in response.text
    assert stored() == []


def test_an_unsigned_mo_push_is_accepted_when_the_operator_allows_it(
    client: TestClient, settings_env: SettingsEnv
) -> None:
    settings_env.setenv("HERALD_CHUANGRUI_MO_ALLOW_UNSIGNED", "true")

    response = client.post("/callbacks/chuangrui/mo", params={"args": MO["args"]})

    assert response.status_code == 200
    assert [p.payload for p in stored()] == [{"args": MO["args"]}]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_an_mo_push_is_checked_then_stored_without_its_pwd(
    client: TestClient, settings_env: SettingsEnv, method: str
) -> None:
    settings_env.setenv("HERALD_CHUANGRUI_MO_NAME", "mo-name")
    settings_env.setenv("HERALD_CHUANGRUI_MO_PWD", "mo-pwd-value")

    wrong = client.request(method, "/callbacks/chuangrui/mo", params={**MO, "pwd": "guess"})
    right = (
        client.get("/callbacks/chuangrui/mo", params=MO)
        if method == "GET"
        else client.post("/callbacks/chuangrui/mo", data=MO)
    )

    assert (wrong.status_code, right.status_code) == (403, 200)
    (push,) = stored()
    assert push.payload == {**MO, "pwd": "***"}
    assert "mo-pwd-value" not in push.model_dump_json()


def test_a_report_push_is_stored_without_its_pwd_and_a_retry_is_still_one_push(
    client: TestClient, settings_env: SettingsEnv
) -> None:
    settings_env.setenv("HERALD_CHUANGRUI_ACCESS_SECRET", "s3cret")
    settings_env.setenv("HERALD_CHUANGRUI_REPORT_PWD", "report-pwd-value")
    random, timestamp = uuid.uuid4().hex, str(int(time.time()))
    signature = hashlib.md5(f"s3cret{random}{timestamp}".encode()).hexdigest()
    report = {
        "name": signature,
        "pwd": "report-pwd-value",
        "random": random,
        "timestamp": timestamp,
        "sendid": "1",
        "mobile": "13800138000",
        "state": "DELIVRD",
        "time": "2026-11-24 10:00:00",
    }

    first = client.post("/callbacks/chuangrui/report", data=report)
    retry = client.post("/callbacks/chuangrui/report", data=report)

    assert (first.status_code, retry.status_code) == (200, 200)
    (push,) = stored()
    assert push.payload == {**report, "pwd": "***"}
