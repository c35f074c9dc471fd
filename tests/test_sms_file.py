"""Unit tests of campaigns from a file, in-process on a fresh store: `herald send sms --to-file`
(CliRunner, `--no-wait`) and `POST /v1/sms/file` (text/csv and multipart). A file with any bad
line stores and queues nothing; a good one is one job. The progress bar against real workers is
tests/integration/test_sms_file_delivery.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlmodel import func, select

from tests.support import SettingsEnv
from worker.api import api
from worker.app import SEND_QUEUE
from worker.cli import main
from worker.store import Delivery, Job, deliveries_of, session_scope

pytestmark = pytest.mark.usefixtures("store_url")
CONTENT = "【Herald】尊敬的{name}，您的验证码是{code}"
BAD_AT = [17, 250, 999, 1000, 1234, 2500, 3333, 4000, 4777, 5001]
"""Line numbers (the header is line 1) of the campaign's bad lines."""


def campaign(size: int = 5000, *, bad_at: list[int] | None = None) -> str:
    """A CSV of `size` recipients with name and code; the lines in `bad_at` have a number
    one digit short."""
    lines = ["phone,name,code"]
    for i in range(size):
        number = f"139{i:08d}"
        lines.append(f"{number},客户{i},{i % 10000:04d}")
    for line in bad_at or []:
        lines[line - 1] = lines[line - 1][:10] + lines[line - 1][11:]
    return "\n".join(lines) + "\n"


def counts() -> tuple[int, int]:
    with session_scope() as session:
        jobs = session.exec(select(func.count()).select_from(Job)).one()
        deliveries = session.exec(select(func.count()).select_from(Delivery)).one()
    return jobs, deliveries


@pytest.fixture
def send_queue(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.delete(SEND_QUEUE)
    yield client
    client.delete(SEND_QUEUE)


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(api) as test_client:
        yield test_client


def send_file(path: str, *extra: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        main,
        ["send", "sms", "--to-file", path, "--content", CONTENT, "--no-wait", *extra],
        input=stdin,
    )
    return result.exit_code, result.stdout, result.stderr


def test_ten_bad_lines_among_5000_are_each_reported_and_nothing_is_queued(
    tmp_path: pytest.TempPathFactory, send_queue: redis.Redis
) -> None:
    path = tmp_path / "numbers.csv"  # type: ignore[operator]
    path.write_text(campaign(bad_at=BAD_AT), encoding="utf-8")

    code, stdout, stderr = send_file(str(path))

    assert code == 2
    assert stdout == ""
    reported = stderr.splitlines()
    assert [line.split(":")[0] for line in reported[:-1]] == [f"line {n}" for n in BAD_AT]
    assert all("not a mainland China mobile number" in line for line in reported[:-1])
    assert reported[-1] == "10 bad lines; nothing was queued"
    assert counts() == (0, 0)
    assert send_queue.llen(SEND_QUEUE) == 0


def test_the_fixed_file_queues_one_job_of_every_distinct_number(
    tmp_path: pytest.TempPathFactory, send_queue: redis.Redis, settings_env: SettingsEnv
) -> None:
    settings_env.setenv("HERALD_MAX_RECIPIENTS", "5000")
    path = tmp_path / "numbers.csv"  # type: ignore[operator]
    text = campaign()
    duplicated = text.splitlines()[1]
    path.write_text(text + duplicated + "\n", encoding="utf-8")

    code, stdout, stderr = send_file(str(path))

    assert code == 0, stderr
    job_id = stdout.strip()
    assert "5000 recipients (1 duplicate dropped)" in stderr
    assert counts() == (1, 5000)
    # one job, started with as many send runs as HERALD_SEND_FANOUT lets share it (8)
    assert send_queue.llen(SEND_QUEUE) == 8
    with session_scope() as session:
        stored = deliveries_of(session, job_id=job_id)
    assert stored[17].phone == "13900000017"
    assert stored[17].text == "【Herald】尊敬的客户17，您的验证码是0017"


def test_numbers_from_stdin_one_a_line(send_queue: redis.Redis) -> None:
    result = CliRunner().invoke(
        main,
        ["send", "sms", "--to-file", "-", "--content", "【Herald】您好", "--no-wait"],
        input="13800138000\n+86 139 0013 9000\n13800138000\n",
    )

    assert result.exit_code == 0, result.stderr
    with session_scope() as session:
        stored = deliveries_of(session, job_id=result.stdout.strip())
    assert [(d.phone, d.text) for d in stored] == [("13800138000", None), ("13900139000", None)]


def test_a_placeholder_no_column_names_is_one_problem_of_the_content(
    tmp_path: pytest.TempPathFactory, send_queue: redis.Redis
) -> None:
    path = tmp_path / "numbers.csv"  # type: ignore[operator]
    path.write_text("phone,name\n13800138000,张三\n13900139000,\n", encoding="utf-8")

    code, _, stderr = send_file(str(path))

    assert code == 2
    assert stderr.splitlines() == [
        "content: the placeholder {code} names no column of the file (its columns: name)",
        "line 3: no value for the placeholder {name}",
        "1 bad line, 1 other problem; nothing was queued",
    ]
    assert counts() == (0, 0)


def test_to_and_to_file_are_one_or_the_other(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "numbers.csv"  # type: ignore[operator]
    path.write_text("13800138000\n", encoding="utf-8")

    both = CliRunner().invoke(
        main, ["send", "sms", "--to", "13800138000", "--to-file", str(path), "--content", "x"]
    )
    neither = CliRunner().invoke(main, ["send", "sms", "--content", "x"])

    assert both.exit_code == neither.exit_code == 2
    assert "either --to" in both.stderr and "either --to" in neither.stderr


@pytest.mark.usefixtures("redis_url")
def test_the_api_takes_a_csv_body_with_the_options_as_query_parameters(
    client: TestClient,
) -> None:
    response = client.post(
        "/v1/sms/file",
        params={"content": CONTENT, "purpose": "verification", "idempotency_key": "csv-1"},
        content="phone,name,code\n13800138000,张三,4821\n+86 139 0013 9000,李四,7730\n",
        headers={"Content-Type": "text/csv"},
    )

    assert response.status_code == 202, response.text
    job = client.get(f"/v1/messages/{response.json()['id']}").json()
    assert job["purpose"] == "verification"
    with session_scope() as session:
        stored = deliveries_of(session, job_id=job["id"])
    assert [(d.phone, d.text) for d in stored] == [
        ("13800138000", "【Herald】尊敬的张三，您的验证码是4821"),
        ("13900139000", "【Herald】尊敬的李四，您的验证码是7730"),
    ]


@pytest.mark.usefixtures("redis_url")
def test_the_api_takes_a_multipart_upload_with_the_options_as_form_fields(
    client: TestClient,
) -> None:
    upload = "手机号,name,code\n13800138000,张三,4821\n".encode("gbk")

    response = client.post(
        "/v1/sms/file",
        files={"file": ("numbers.csv", upload, "text/csv")},
        data={"content": CONTENT, "allow_failover": "false"},
    )

    assert response.status_code == 202, response.text
    with session_scope() as session:
        job = session.get(Job, response.json()["id"])
        assert job is not None and job.allow_failover is False
        (stored,) = deliveries_of(session, job_id=job.id)
    assert stored.text == "【Herald】尊敬的张三，您的验证码是4821"


@pytest.mark.usefixtures("redis_url")
def test_the_api_names_each_bad_line_and_rule_and_stores_nothing(client: TestClient) -> None:
    response = client.post(
        "/v1/sms/file",
        params={"content": CONTENT},
        content="phone,name,code\n13800138000,张三,1\n1380013800,李四,2\n13700137000,,3\n",
        headers={"Content-Type": "text/csv"},
    )

    assert response.status_code == 422
    assert [(p["loc"], p["msg"]) for p in response.json()["detail"]] == [
        (
            ["body", "line", 3],
            "'1380013800' is not a mainland China mobile number (11 digits starting 13-19)",
        ),
    ]
    fixed = client.post(
        "/v1/sms/file",
        params={"content": CONTENT},
        content="phone,name,code\n13800138000,张三,1\n13700137000,,3\n",
        headers={"Content-Type": "text/csv"},
    )
    assert [(p["loc"], p["msg"]) for p in fixed.json()["detail"]] == [
        (["body", "line", 3, "values", "name"], "no value for the placeholder {name}"),
    ]
    assert counts() == (0, 0)


@pytest.mark.usefixtures("redis_url")
def test_the_api_places_each_option_problem_where_the_option_was_given(
    client: TestClient,
) -> None:
    csv_body = client.post(
        "/v1/sms/file",
        params={"content": "没有签名", "to": "13800138000"},
        content="13800138000\n",
        headers={"Content-Type": "text/csv"},
    )
    form = client.post(
        "/v1/sms/file",
        files={"file": ("n.csv", b"13800138000\n", "text/csv")},
        data={"content": "没有签名"},
    )
    no_file = client.post("/v1/sms/file", data={"content": "【Herald】您好"}, files={"x": b""})
    json_body = client.post("/v1/sms/file", json={"to": ["13800138000"], "content": "x"})

    assert [p["loc"] for p in csv_body.json()["detail"]] == [["query", "to"]]
    assert [p["loc"] for p in form.json()["detail"]] == [["body", "content"]]
    assert "【signature】" in form.json()["detail"][0]["msg"]
    assert [p["loc"] for p in no_file.json()["detail"]] == [["body", "file"]]
    assert json_body.status_code == 415
    assert counts() == (0, 0)


@pytest.mark.usefixtures("redis_url")
def test_the_documented_csv_examples_are_accepted(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/v1/sms/file"]["post"]
    body = operation["requestBody"]["content"]
    assert "multipart/form-data" in body
    assert {p["name"] for p in operation["parameters"]} >= {"content", "purpose", "send_at"}

    for example in body["text/csv"]["examples"].values():
        response = client.post(
            "/v1/sms/file",
            params={"content": "【Herald】尊敬的{name}，您的验证码是{code}"}
            if "{name}" in example.get("description", "")
            else {"content": "【Herald】您好"},
            content=example["value"],
            headers={"Content-Type": "text/csv"},
        )
        assert response.status_code == 202, response.text
