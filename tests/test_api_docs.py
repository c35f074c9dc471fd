"""Unit tests of the API's documentation (in-process): the OpenAPI says who each operation is
for, describes every field, documents the errors each operation can answer, and every request
example it shows is accepted by the API as it stands. The pages themselves render in a browser
in tests/browser/test_api_docs.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support import SettingsEnv
from worker.api import api
from worker.api.responses import STANDARD

AUDIENCES = {"producers", "operators", "vendor callbacks", "health"}
KEYED = {"producers", "operators"}


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(api) as test_client:
        yield test_client


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, by_method in api.openapi()["paths"].items()
        for method, operation in by_method.items()
    ]


def test_every_operation_is_for_one_audience_and_each_audience_is_described() -> None:
    tags = {tag["name"]: tag.get("description", "") for tag in api.openapi()["tags"]}

    assert set(tags) == AUDIENCES and all(tags.values())
    for method, path, operation in operations():
        assert len(operation["tags"]) == 1 and operation["tags"][0] in AUDIENCES, (method, path)
        assert operation.get("summary") and operation.get("description"), (method, path)


def test_every_field_of_every_schema_and_every_parameter_is_described() -> None:
    schemas = api.openapi()["components"]["schemas"]
    undescribed = [
        f"{name}.{field}"
        for name, schema in schemas.items()
        for field, spec in schema.get("properties", {}).items()
        if not spec.get("description")
    ]
    undescribed += [
        f"{method} {path} {parameter['name']}"
        for method, path, operation in operations()
        for parameter in operation.get("parameters", [])
        if not parameter.get("description")
    ]

    assert {"SmsRequest", "MmsRequest", "PersonalisedMmsRequest", "VoiceRequest"} <= set(schemas)
    assert {"SuppressionIn", "JobAccepted", "JobPublic", "RecipientPublic"} <= set(schemas)
    assert undescribed == []


def test_every_operation_documents_the_errors_it_can_answer() -> None:
    missing = []
    for method, path, operation in operations():
        (audience,) = operation["tags"]
        expected = {"503"}
        if audience in KEYED:
            expected |= {"401", "403"}
        if audience == "vendor callbacks":
            expected |= {"403"}
        if "requestBody" in operation or audience == "vendor callbacks":
            expected |= {"413"}
        if "requestBody" in operation or operation.get("parameters"):
            expected |= {"422"}
        if audience in KEYED and "{" in path:
            expected |= {"404"}
        if path.endswith("/cancel"):
            expected |= {"409"}
        documented = operation["responses"]
        missing += [f"{method} {path}: {code}" for code in sorted(expected - set(documented))]
        for code, response in documented.items():
            if code.startswith(("4", "5")):
                assert response["description"] and response.get("content"), (path, code)

    assert missing == []


def test_the_documented_422_is_what_the_api_answers(client: TestClient) -> None:
    example = STANDARD[422]["content"]["application/json"]["example"]

    response = client.post("/v1/sms", json={"to": ["1380013800"], "content": "【Herald】您好"})

    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    (documented,) = example["detail"]
    assert {key: problem[key] for key in documented} == documented


@pytest.mark.usefixtures("store_url", "redis_url")
def test_every_documented_request_example_is_accepted_and_stored(
    client: TestClient, settings_env: SettingsEnv
) -> None:
    for name, value in {
        "HERALD_CHUANGRUI_URL": "http://127.0.0.1:9/chuangrui",
        "HERALD_CHUANGRUI_NAME": "name",
        "HERALD_CHUANGRUI_PWD": "pwd-of-the-test",
        "HERALD_FIVEC_APIKEY": "apikey-of-the-test",
        "HERALD_FIVEC_USERNAME": "username",
        "HERALD_FIVEC_PASSWORD": "password-of-the-test",
    }.items():
        settings_env.setenv(name, value)
    posted = []
    for method, path, operation in operations():
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if body is None:
            continue
        examples = body.get("examples", {})
        assert examples, f"{method} {path} has no example"
        for name, example in examples.items():
            assert example.get("summary"), (path, name)
            response = client.request(method, path, json=example["value"])
            assert 200 <= response.status_code < 300, (path, name, response.text)
            posted.append(path)
            if operation["tags"] == ["producers"]:
                job = client.get(f"/v1/messages/{response.json()['id']}")
                assert job.status_code == 200
                to = example["value"].get("to") or example["value"]["recipients"]
                assert len(job.json()["recipients"]) == len(to)

    assert {"/v1/sms", "/v1/mms", "/v1/mms/personalised", "/v1/voice"} <= set(posted)
    assert "/v1/suppressions" in posted
    suppressed = {s["phone"] for s in client.get("/v1/suppressions").json()}
    assert suppressed == {"13800138000", "13900139000"}


def test_the_docs_pages_load_nothing_from_another_host(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        response = client.get(page)

        assert response.status_code == 200
        assert "/static-offline-docs/" in response.text
        assert "cdn" not in response.text.lower() and "googleapis" not in response.text
        assert "img-src 'self' data:" in response.headers["Content-Security-Policy"]
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png"):
        assert client.get(f"/static-offline-docs/{asset}").status_code == 200
