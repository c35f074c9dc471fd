"""The fuzzed requests that answered 500, each now answered 4xx naming what is wrong, on SQLite
and on PostgreSQL (which refuses NUL characters that SQLite keeps); and the callbacks fed
arbitrary bodies."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import func, select

from tests.conftest import CALLBACK_TOKEN, make_postgres_database
from tests.fuzz.conftest import fuzz_examples
from tests.fuzz.strategies import BYTE_TOKENS, mutated
from worker.api import api, create_api
from worker.api.operators import INBOUND_MAX_LIMIT, MAX_OFFSET, SUPPRESSIONS_MAX_LIMIT
from worker.store import Job, Suppression, session_scope

SMS = {"to": ["13800138000"], "content": "【Herald】您好"}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One new store for the whole module (SQLite, then PostgreSQL): its requests are refused
    and store nothing but the callbacks' pushes, and a database per test costs more than them."""
    from worker.settings import get_settings
    from worker.store import migrate, reset_engine

    drop = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('store') / 'store.db'}"
    else:
        url, drop = make_postgres_database()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HERALD_DATABASE_URL", url)
        get_settings.cache_clear()
        reset_engine()
        migrate.upgrade(url)
        yield url
    get_settings.cache_clear()
    reset_engine()
    if drop is not None:
        drop()


@pytest.fixture
def client(store: str, redis_url: str) -> Iterator[TestClient]:
    with TestClient(api, raise_server_exceptions=False) as test_client:
        yield test_client


def count(model: type[Job] | type[Suppression]) -> int:
    with session_scope() as session:
        return session.exec(select(func.count()).select_from(model)).one()


def problem_locations(response: object) -> list[list[object]]:
    return [p["loc"] for p in response.json()["detail"]]  # type: ignore[attr-defined]


# Paging ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "parameter", "value"),
    [
        ("/v1/suppressions", "limit", "-1"),
        ("/v1/suppressions", "limit", "0"),
        ("/v1/suppressions", "limit", str(SUPPRESSIONS_MAX_LIMIT + 1)),
        ("/v1/suppressions", "limit", "9" * 30),
        ("/v1/suppressions", "offset", "-1"),
        ("/v1/suppressions", "offset", str(MAX_OFFSET + 1)),
        ("/v1/suppressions", "offset", "9" * 30),
        ("/v1/inbound", "limit", "-5"),
        ("/v1/inbound", "limit", str(INBOUND_MAX_LIMIT + 1)),
        ("/v1/inbound", "offset", "-1"),
        ("/v1/inbound", "offset", "99999999999999999999"),
    ],
)
def test_a_page_out_of_bounds_is_refused_naming_the_parameter(
    client: TestClient, path: str, parameter: str, value: str
) -> None:
    response = client.get(path, params={parameter: value})

    assert response.status_code == 422
    assert problem_locations(response) == [["query", parameter]]


@pytest.mark.parametrize("path", ["/v1/suppressions", "/v1/inbound"])
def test_the_bounds_themselves_are_accepted(client: TestClient, path: str) -> None:
    top = SUPPRESSIONS_MAX_LIMIT if path == "/v1/suppressions" else INBOUND_MAX_LIMIT

    assert client.get(path, params={"limit": top, "offset": MAX_OFFSET}).json() == []
    assert client.get(path, params={"limit": 1, "offset": 0}).status_code == 200


def test_the_bounds_are_in_the_api_documentation() -> None:
    parameters = create_api().openapi()["paths"]["/v1/suppressions"]["get"]["parameters"]
    limit = next(p for p in parameters if p["name"] == "limit")

    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, SUPPRESSIONS_MAX_LIMIT)
    assert "10_000" in limit["description"]


def test_every_operation_has_its_own_operation_id() -> None:
    """A route of two methods gave both one operationId (and FastAPI a warning per /openapi.json),
    which schema-driven clients and fuzzers refuse."""
    paths = create_api().openapi()["paths"]
    ids = [operation["operationId"] for path in paths.values() for operation in path.values()]

    assert len(ids) == len(set(ids))


# NUL characters and lone surrogates --------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/messages/ab%00cd"), ("POST", "/v1/messages/ab%00cd/cancel")],
)
def test_a_job_id_with_a_nul_is_no_job(client: TestClient, method: str, path: str) -> None:
    assert client.request(method, path).status_code == 404


def test_a_phone_with_a_nul_in_the_path_is_refused(client: TestClient) -> None:
    response = client.delete("/v1/suppressions/1380013800%00")

    assert response.status_code == 422
    assert problem_locations(response) == [["path", "phone"]]


@pytest.mark.parametrize(
    ("path", "body", "location"),
    [
        ("/v1/sms", {**SMS, "content": "【Herald】a\x00b"}, ["body", "content"]),
        ("/v1/sms", {**SMS, "content": "【Herald】a\ud800b"}, ["body", "content"]),
        ("/v1/sms", {**SMS, "idempotency_key": "k\x00"}, ["body", "idempotency_key"]),
        ("/v1/sms", {**SMS, "vendor": "veesing\x00"}, ["body", "vendor"]),
        (
            "/v1/mms",
            {"to": ["13800138000"], "title": "t\x00", "frames": [{"text": "a"}]},
            ["body", "title"],
        ),
        (
            "/v1/mms",
            {"to": ["13800138000"], "title": "t", "frames": [{"text": "a\x00"}]},
            ["body", "frames", 0, "text"],
        ),
        (
            "/v1/voice",
            {"to": ["13800138000"], "template_id": "T1", "variables": "\x00", "kind": "notice"},
            ["body", "variables"],
        ),
        ("/v1/suppressions", {"phone": "13800138000", "reason": "a\x00"}, ["body", "reason"]),
    ],
    ids=[
        "sms content",
        "sms content surrogate",
        "idempotency key",
        "vendor",
        "mms title",
        "mms frame text",
        "voice variables",
        "suppression reason",
    ],
)
def test_a_field_with_a_nul_or_a_lone_surrogate_is_refused_naming_it(
    client: TestClient, path: str, body: dict[str, object], location: list[object]
) -> None:
    # Sent as JSON escapes (`\u0000`, `\ud800`), as any client library writes them.
    content = json.dumps(body).encode("ascii")
    response = client.post(path, content=content, headers={"content-type": "application/json"})

    assert response.status_code == 422
    assert location in problem_locations(response)
    assert count(Job) == count(Suppression) == 0


def test_a_number_in_another_scripts_digits_is_refused(client: TestClient) -> None:
    """`\\d` matched Arabic-Indic digits: such a number was accepted and stored as it was."""
    response = client.post("/v1/sms", json={**SMS, "to": ["13٨٠٠١٣٨٠٠٠"]})

    assert response.status_code == 422
    assert problem_locations(response) == [["body", "to", 0]]


# Bodies that are not UTF-8 ------------------------------------------------------------------------

NOT_UTF8_JSON = b'{"to": ["13800138000"], "content": "\xe3\x80\x90Herald\xe3\x80\x91\xff"}'


@pytest.mark.parametrize(
    "content_type", ["application/json", "text/plain", "application/octet-stream", None]
)
def test_a_body_that_is_not_utf8_is_refused_not_a_500(
    client: TestClient, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/v1/sms", content=NOT_UTF8_JSON, headers=headers)

    assert response.status_code in (400, 422)
    assert count(Job) == 0


def test_the_422_quotes_undecodable_bytes_with_replacement_characters(client: TestClient) -> None:
    response = client.post("/v1/sms", content=NOT_UTF8_JSON, headers={"content-type": "text/plain"})

    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["body"]
    assert problem["input"].endswith('】\ufffd"}')


CALLBACKS = [
    f"/callbacks/veesing/sms/{CALLBACK_TOKEN}",
    f"/callbacks/veesing/mms/{CALLBACK_TOKEN}",
    f"/callbacks/veesing/voice/{CALLBACK_TOKEN}",
    "/callbacks/chuangrui/report",
    "/callbacks/chuangrui/mo",
]
CONTENT_TYPES = [
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=gbk",
    "multipart/form-data; boundary=x",
    "multipart/form-data",
    "application/json",
    "text/plain",
]
FORM_SAMPLES = [
    b"mobile=15080920000&taskid=123&status=1&code=MA%3A0001&receivetime=2019-07-23+17%3A00%3A00",
    b"taskId=123&returnStatus=0&message=%E5%86%85%E5%AE%B9",
    b"name=fuzz&args=13800210021%23%40%23%E5%9B%9E%E5%A4%8D%23%40%232013-08-21+21%3A20%3A11",
    b'--x\r\nContent-Disposition: form-data; name="args"\r\n\r\n\xff\xfe\r\n--x--\r\n',
    b"mobile=\xff\xfe&status=1&taskid=1",
    b"mobile=%ff%fe%00&status=1&taskid=1",
]


@pytest.mark.parametrize("path", CALLBACKS)
@settings(
    max_examples=max(20, fuzz_examples() // 10),
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    body=st.one_of(
        st.binary(max_size=200), mutated(FORM_SAMPLES, st.binary(max_size=6), BYTE_TOKENS)
    ),
    content_type=st.sampled_from(CONTENT_TYPES),
    query=st.sampled_from(["", "?args=%ff%fe", "?mobile=1%00", "?a=%E5%9B"]),
)
def test_a_callback_fed_any_body_answers_without_a_500(
    client: TestClient, path: str, body: bytes, content_type: str, query: str
) -> None:
    response = client.post(path + query, content=body, headers={"content-type": content_type})

    assert response.status_code < 500, response.text
