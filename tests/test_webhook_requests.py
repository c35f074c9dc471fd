"""A job's callback address: checked when the job is made, refused while webhooks cannot be
signed, and HERALD_WEBHOOK_URL as the default (in-process API, fresh store)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlmodel import select

from tests.support import SettingsEnv
from worker.api import api
from worker.settings import Settings
from worker.store import Job, session_scope

pytestmark = pytest.mark.usefixtures("store_url", "redis_url")
GOOD = {"to": ["13800138000"], "content": "【Herald】您好"}
HOOK = "https://app.example/herald/status?account=7"


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(api) as test_client:
        yield test_client


def stored_callback_url(job_id: str) -> str | None:
    with session_scope() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job.callback_url


def test_a_callback_url_is_kept_on_its_job(client: TestClient, settings_env: SettingsEnv) -> None:
    settings_env.setenv("HERALD_WEBHOOK_SECRET", "s" * 32)

    response = client.post("/v1/sms", json={**GOOD, "callback_url": HOOK})

    assert response.status_code == 202
    assert stored_callback_url(response.json()["id"]) == HOOK
    assert client.get(f"/v1/messages/{response.json()['id']}").json()["callback_url"] == HOOK


def test_without_a_secret_a_callback_url_is_refused_and_nothing_stored(
    client: TestClient,
) -> None:
    response = client.post(
        "/v1/voice",
        json={
            "to": ["13800138000"],
            "template_id": "T1",
            "variables": "1234",
            "kind": "code",
            "callback_url": HOOK,
        },
    )

    assert response.status_code == 422
    assert "HERALD_WEBHOOK_SECRET" in response.text
    with session_scope() as session:
        assert session.exec(select(Job)).all() == []


@pytest.mark.parametrize(
    "url", ["ftp://app.example/hook", "app.example/hook", "https://", "http://x/" + "a" * 2048]
)
def test_a_callback_url_that_is_not_a_web_address_is_refused(
    client: TestClient, settings_env: SettingsEnv, url: str
) -> None:
    settings_env.setenv("HERALD_WEBHOOK_SECRET", "s" * 32)

    response = client.post("/v1/sms", json={**GOOD, "callback_url": url})

    assert response.status_code == 422
    assert any(p["loc"] == ["body", "callback_url"] for p in response.json()["detail"])


def test_jobs_without_their_own_address_use_the_setting(
    client: TestClient, settings_env: SettingsEnv
) -> None:
    settings_env.setenv("HERALD_WEBHOOK_SECRET", "s" * 32)
    settings_env.setenv("HERALD_WEBHOOK_URL", HOOK)

    default = client.post("/v1/sms", json=GOOD).json()["id"]
    own = client.post(
        "/v1/sms", json={**GOOD, "to": ["13900139000"], "callback_url": "http://10.1.1.1/h"}
    ).json()["id"]

    assert stored_callback_url(default) == HOOK
    assert stored_callback_url(own) == "http://10.1.1.1/h"


def test_a_default_address_needs_a_secret_and_must_be_a_web_address() -> None:
    with pytest.raises(ValidationError, match="HERALD_WEBHOOK_SECRET"):
        Settings(webhook_url=HOOK)
    with pytest.raises(ValidationError, match="HERALD_WEBHOOK_URL must be an http"):
        Settings(webhook_url="mailto:ops@app.example", webhook_secret="s" * 32)  # type: ignore[arg-type]
