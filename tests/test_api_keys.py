"""API keys: who may use the producers' and operators' routes (worker/api/auth.py), the keys
`herald keys` stores (hashes only), and the name each job records."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlmodel import func, select

from tests.conftest import CALLBACK_TOKEN
from tests.support import SettingsEnv
from worker.api import api, create_api
from worker.api.auth import is_loopback
from worker.cli import main
from worker.errors import ConfigurationError
from worker.settings import Settings
from worker.store import ApiKey, Job, create_api_key, revoke_api_key, session_scope, utcnow

pytestmark = pytest.mark.usefixtures("store_url", "redis_url")
GOOD = {"to": ["13800138000"], "content": "【Herald】您好"}
ENV_KEY = "env-key-0123456789abcdef"


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(api) as test_client:
        yield test_client


@pytest.fixture
def with_keys(settings_env: SettingsEnv) -> None:
    settings_env.setenv("HERALD_API_KEYS", f"shop={ENV_KEY}, crm=another-key-0123456789")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def jobs() -> list[Job]:
    with session_scope() as session:
        return list(session.exec(select(Job)))


def stored_key(name: str) -> str:
    with session_scope() as session:
        return create_api_key(session, name=name, now=utcnow())


# --- with keys configured ----------------------------------------------------------------------


@pytest.mark.usefixtures("with_keys")
def test_without_a_key_an_sms_is_refused_with_401_and_nothing_is_stored(
    client: TestClient,
) -> None:
    response = client.post("/v1/sms", json=GOOD)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert jobs() == []


@pytest.mark.usefixtures("with_keys")
@pytest.mark.parametrize(
    "authorization", [f"Bearer {ENV_KEY}x", "Bearer hk_unknown", f"Basic {ENV_KEY}", ENV_KEY]
)
def test_a_wrong_key_is_refused_with_401_and_nothing_is_stored(
    client: TestClient, authorization: str
) -> None:
    response = client.post("/v1/sms", json=GOOD, headers={"Authorization": authorization})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert jobs() == []


@pytest.mark.usefixtures("with_keys")
def test_a_configured_key_is_accepted_and_the_job_records_its_name(client: TestClient) -> None:
    response = client.post("/v1/sms", json=GOOD, headers=bearer(ENV_KEY))

    assert response.status_code == 202
    (job,) = jobs()
    assert (job.id, job.api_key_name) == (response.json()["id"], "shop")


def test_a_stored_key_is_accepted_and_a_revoked_one_is_refused_with_403(
    client: TestClient,
) -> None:
    key = stored_key("billing")

    accepted = client.post("/v1/sms", json=GOOD, headers=bearer(key))
    with session_scope() as session:
        assert revoke_api_key(session, name="billing", now=utcnow())
    refused = client.post("/v1/sms", json={**GOOD, "to": ["13900139000"]}, headers=bearer(key))

    assert accepted.status_code == 202
    assert refused.status_code == 403
    assert [(j.id, j.api_key_name) for j in jobs()] == [(accepted.json()["id"], "billing")]


@pytest.mark.usefixtures("with_keys")
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/messages/nope"),
        ("POST", "/v1/messages/nope/cancel"),
        ("GET", "/v1/inbound"),
        ("GET", "/v1/vendors"),
        ("GET", "/v1/suppressions"),
        ("DELETE", "/v1/suppressions/13800138000"),
    ],
)
def test_every_producer_and_operator_route_needs_a_key(
    client: TestClient, method: str, path: str
) -> None:
    assert client.request(method, path).status_code == 401
    assert client.request(method, path, headers=bearer(ENV_KEY)).status_code != 401


@pytest.mark.usefixtures("with_keys")
def test_health_and_the_vendors_callbacks_need_no_api_key(client: TestClient) -> None:
    receipt = {"mobile": "13800138000", "taskid": "1", "status": "1", "code": "DELIVRD"}

    assert client.get("/healthz").status_code == 200
    assert client.post(f"/callbacks/veesing/sms/{CALLBACK_TOKEN}", data=receipt).status_code == 200


# --- no key at all -----------------------------------------------------------------------------


def test_with_no_key_at_all_the_loopback_api_accepts_requests_without_one(
    client: TestClient,
) -> None:
    response = client.post("/v1/sms", json=GOOD)

    assert response.status_code == 202
    assert [j.api_key_name for j in jobs()] == [None]


def test_keyless_mode_ends_once_a_key_is_stored(client: TestClient) -> None:
    stored_key("first")

    assert client.post("/v1/sms", json=GOOD).status_code == 401
    assert jobs() == []


def test_keyless_mode_says_so_when_the_api_starts(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="worker.api.auth"), TestClient(create_api()):
        pass

    assert any(
        r.levelno == logging.WARNING and "no API key exists" in r.getMessage()
        for r in caplog.records
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::"])
def test_without_keys_an_api_listening_beyond_loopback_refuses_to_start(
    settings_env: SettingsEnv, host: str
) -> None:
    settings_env.setenv("HERALD_API_HOST", host)

    with pytest.raises(ConfigurationError, match="HERALD_API_HOST"), TestClient(create_api()):
        pass


def test_with_a_key_an_api_listening_beyond_loopback_starts_and_needs_it(
    settings_env: SettingsEnv,
) -> None:
    settings_env.setenv("HERALD_API_HOST", "0.0.0.0")
    key = stored_key("ops")
    with TestClient(create_api()) as client:
        assert client.post("/v1/sms", json=GOOD).status_code == 401
        assert client.post("/v1/sms", json=GOOD, headers=bearer(key)).status_code == 202


def test_beyond_loopback_a_request_without_a_key_is_refused_once_every_key_is_revoked(
    settings_env: SettingsEnv,
) -> None:
    settings_env.setenv("HERALD_API_HOST", "0.0.0.0")
    stored_key("ops")
    with TestClient(create_api()) as client:
        with session_scope() as session:
            revoke_api_key(session, name="ops", now=utcnow())

        assert client.post("/v1/sms", json=GOOD).status_code == 401
    assert jobs() == []


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.1.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.2", False),
        ("api.example", False),
    ],
)
def test_which_addresses_are_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


# --- HERALD_API_KEYS ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "shop",
        "shop=",
        "=0123456789abcdefgh",
        "shop=short",
        "a=0123456789abcdef,a=0123456789abcdefg",
    ],
)
def test_a_malformed_herald_api_keys_is_refused_without_showing_a_key(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("HERALD_API_KEYS", value)

    with pytest.raises(ValidationError, match="HERALD_API_KEYS") as raised:
        Settings()
    assert "0123456789abcdef" not in str(raised.value)


def test_the_api_keys_never_show_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_API_KEYS", f"shop={ENV_KEY}")

    assert ENV_KEY not in repr(Settings())
    assert ENV_KEY not in repr(Settings().configured_api_keys())


# --- herald keys -------------------------------------------------------------------------------


def test_herald_keys_create_prints_a_key_once_and_stores_only_its_hash(
    client: TestClient,
) -> None:
    runner = CliRunner()

    created = runner.invoke(main, ["keys", "create", "shop"])
    listed = runner.invoke(main, ["keys", "list", "--json"])

    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert key.startswith("hk_") and len(key) > 40
    assert key not in listed.output
    assert [(k["name"], k["source"], k["revoked_at"]) for k in json.loads(listed.stdout)] == [
        ("shop", "store", None)
    ]
    with session_scope() as session:
        (row,) = session.exec(select(ApiKey)).all()
    assert key not in row.model_dump_json()
    assert client.post("/v1/sms", json=GOOD, headers=bearer(key)).status_code == 202


def test_herald_keys_revoke_makes_the_key_answer_403(client: TestClient) -> None:
    runner = CliRunner()
    key = runner.invoke(main, ["keys", "create", "shop"]).stdout.strip()

    revoked = runner.invoke(main, ["keys", "revoke", "shop"])
    again = runner.invoke(main, ["keys", "revoke", "shop"])

    assert revoked.exit_code == 0, revoked.output
    assert again.exit_code == 1
    assert client.post("/v1/sms", json=GOOD, headers=bearer(key)).status_code == 403
    listed = json.loads(runner.invoke(main, ["keys", "list", "--json"]).stdout)
    assert listed[0]["revoked_at"] is not None


def test_a_key_name_is_never_reused(settings_env: SettingsEnv) -> None:
    settings_env.setenv("HERALD_API_KEYS", f"shop={ENV_KEY}")
    runner = CliRunner()
    runner.invoke(main, ["keys", "create", "billing"])
    runner.invoke(main, ["keys", "revoke", "billing"])

    again = runner.invoke(main, ["keys", "create", "billing"])
    configured = runner.invoke(main, ["keys", "create", "shop"])
    badly_named = runner.invoke(main, ["keys", "create", "a b"])

    assert (again.exit_code, configured.exit_code, badly_named.exit_code) == (1, 1, 2)
    with session_scope() as session:
        assert session.exec(select(func.count()).select_from(ApiKey)).one() == 1


def test_a_job_sent_with_herald_send_records_the_cli_as_its_caller() -> None:
    sent = CliRunner().invoke(
        main, ["send", "sms", "--to", "13800138000", "--content", "【Herald】您好"]
    )

    assert sent.exit_code == 0, sent.output
    assert [(j.id, j.api_key_name) for j in jobs()] == [(sent.stdout.strip(), "cli")]
