"""Integration: after a full run, no secret and no whole phone number anywhere it must not be.

The system runs with API keys and distinct secrets for every credential (vendor keys and
passwords, Chuangrui's report and MO pwd, the callback token, an API key from HERALD_API_KEYS
and one made by `herald keys create`, Flower's password). A few jobs of each channel go through
the sandbox: Veesing SMS (with a reply), Chuangrui SMS with its signed report pushes (by the
sandbox, POST, and by the test, GET with `pwd` and the phone in the query string) and MO pushes
(the same two ways), Veesing MMS (audited), 5C MMS (pulled reports) and a voice code; a
malformed report push whose error the worker logs with the phone in it; and a few operator
requests that carry a phone in their path or query.

Then every log file of the run (API, worker, beat, sandbox, Flower), every row of every store
table (as text) and Flower's task pages (`/api/tasks`, `/tasks`, each task's page; Flower with
basic auth) are searched:

- no configured secret, anywhere;
- no phone number of the run, unmasked, anywhere except the store columns whose data a phone
  is: `delivery.phone`, `inboundmessage.phone`, `suppression.phone`, and the pushes as received
  (`vendorpush.payload`: a report's `mobile`, an MO's `args`; `vendorpush.outcome`, which quotes
  the field of a malformed push). Those are searched for secrets only.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.conftest import CALLBACK_TOKEN
from tests.integration.conftest import System
from tests.support import HERALD, free_port, wait_until

pytestmark = pytest.mark.integration


def secret(name: str) -> str:
    return f"{name}-{secrets.token_hex(8)}"


API_KEY = secret("api-key")
VEESING_APP_KEY = secret("veesing-app-key")
CHUANGRUI_PWD = secret("chuangrui-pwd")
CHUANGRUI_ACCESS_SECRET = secret("chuangrui-access-secret")
CHUANGRUI_REPORT_PWD = secret("chuangrui-report-pwd")
CHUANGRUI_MO_PWD = secret("chuangrui-mo-pwd")
FIVEC_APIKEY = secret("fivec-apikey")
FIVEC_PASSWORD = secret("fivec-password")
FLOWER_AUTH = ("herald", secret("flower-password"))
SECRETS = [
    API_KEY,
    VEESING_APP_KEY,
    CHUANGRUI_PWD,
    CHUANGRUI_ACCESS_SECRET,
    CHUANGRUI_REPORT_PWD,
    CHUANGRUI_MO_PWD,
    FIVEC_APIKEY,
    FIVEC_PASSWORD,
    FLOWER_AUTH[1],
]
SYSTEM_ENV = {
    "HERALD_API_KEYS": f"producer={API_KEY}",
    "HERALD_VEESING_APP_KEY": VEESING_APP_KEY,
    "SANDBOX_VEESING_APP_KEY": VEESING_APP_KEY,
    "HERALD_CHUANGRUI_PWD": CHUANGRUI_PWD,
    "SANDBOX_CHUANGRUI_PWD": CHUANGRUI_PWD,
    "HERALD_CHUANGRUI_ACCESS_SECRET": CHUANGRUI_ACCESS_SECRET,
    "SANDBOX_CHUANGRUI_ACCESS_SECRET": CHUANGRUI_ACCESS_SECRET,
    "HERALD_CHUANGRUI_REPORT_PWD": CHUANGRUI_REPORT_PWD,
    "SANDBOX_CHUANGRUI_REPORT_PWD": CHUANGRUI_REPORT_PWD,
    "HERALD_CHUANGRUI_MO_PWD": CHUANGRUI_MO_PWD,
    "SANDBOX_CHUANGRUI_MO_PWD": CHUANGRUI_MO_PWD,
    "HERALD_FIVEC_APIKEY": FIVEC_APIKEY,
    "SANDBOX_FIVEC_APIKEY": FIVEC_APIKEY,
    "HERALD_FIVEC_PASSWORD": FIVEC_PASSWORD,
    "SANDBOX_FIVEC_PASSWORD": FIVEC_PASSWORD,
    "HERALD_FLOWER_BASIC_AUTH": ":".join(FLOWER_AUTH),
}
PHONES = [f"137{n:08d}" for n in range(20260001, 20260013)]
GIF = base64.b64encode(b"GIF89a" + b"\x00" * 64).decode()
SHANGHAI = ZoneInfo("Asia/Shanghai")
PHONE_COLUMNS = {
    ("delivery", "phone"),
    ("inboundmessage", "phone"),
    ("suppression", "phone"),
    ("vendorpush", "payload"),
    ("vendorpush", "outcome"),
}
"""Where a phone number is the data itself; these are searched for secrets only. A push's
`outcome` says what applying it found, and quotes the field of a malformed one."""


@pytest.fixture(scope="module")
def flower(system: System) -> Iterator[str]:
    """Flower with basic auth, started before any job so that it sees every task."""
    port = free_port()
    child = system.start_flower(port, ":".join(FLOWER_AUTH))
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert child.alive(), child.log()[-3000:]
        try:
            return httpx.get(f"{url}/api/workers", auth=FLOWER_AUTH, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(answers, timeout_s=60, what="Flower")
    yield url


def test_no_secret_and_no_unmasked_phone_in_logs_store_or_flower(
    system: System, engine: Engine, flower: str
) -> None:
    stored_key = create_stored_key(system)
    run_every_channel(system, stored_key)

    configured = [*SECRETS, CALLBACK_TOKEN, stored_key]
    places = {**log_files(system), **flower_pages(flower)}
    found = [
        f"{where}: {what}"
        for where, text in places.items()
        for what in [*configured, *PHONES]
        if what in text
    ]
    for (table, column), text in store_columns(engine).items():
        allowed = configured if (table, column) in PHONE_COLUMNS else [*configured, *PHONES]
        found += [f"store {table}.{column}: {what}" for what in allowed if what in text]

    assert found == []
    # And the search would have seen them: they were there, masked
    api_log, worker_log = places["logs/api.log"], places["logs/worker.log"]
    assert "mobile=137****0003" in api_log and "pwd=***" in api_log
    assert "/v1/inbound?phone=137****0010" in api_log
    assert "/callbacks/veesing/sms/***" in api_log
    assert "mobile is not a list of numbers: '137****0012,x'" in worker_log
    assert PHONES[7] not in store_columns(engine)[("delivery", "phone")]  # the 401 stored nothing


def create_stored_key(system: System) -> str:
    """`herald keys create`, run against the system's store; the key it printed."""
    created = subprocess.run(
        [HERALD, "keys", "create", "crm"],
        env=system.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return created.stdout.strip()


def run_every_channel(system: System, stored_key: str) -> None:
    api = httpx.Client(base_url=system.api_url, headers=system.headers(), timeout=10)
    with_stored_key = {"Authorization": f"Bearer {stored_key}"}
    p = PHONES
    jobs = [
        system.send_sms([p[0], p[1]]),
        system.send_sms([p[2]], vendor="chuangrui"),
        system.submit(
            "/v1/mms",
            {
                "to": [p[3]],
                "title": "双十一",
                "frames": [{"seconds": 5, "text": "欢迎", "media": {"type": "gif", "base64": GIF}}],
            },
        ),
        system.submit(
            "/v1/mms",
            {
                "to": [p[4]],
                "title": "标题",
                "vendor": "fivec",
                "frames": [{"text": "你好", "media": {"type": "gif", "base64": GIF}}],
            },
        ),
        system.submit(
            "/v1/voice", {"to": [p[5]], "template_id": "724", "variables": "1234", "kind": "code"}
        ),
    ]
    sms = api.post(
        "/v1/sms",
        json={"to": [p[6]], "content": "【Herald】您好", "vendor": "chuangrui"},
        headers=with_stored_key,
    )
    assert sms.status_code == 202, sms.text
    jobs.append(sms.json()["id"])
    keyless = httpx.post(f"{system.api_url}/v1/sms", json={"to": [p[7]], "content": "【H】x"})
    assert keyless.status_code == 401
    settled = system.wait_settled(jobs, timeout_s=60)
    assert all(r["status"] == "delivered" for job in settled for r in job["recipients"]), settled

    # Pushes the test makes itself, by GET: pwd and phones in the query string
    chuangrui_job = settled[1]["recipients"][0]
    report = signed_report(chuangrui_job["vendor_ref"], p[2])
    assert api.get("/callbacks/chuangrui/report", params=report).status_code == 200
    # A malformed one, which the worker logs (quoting the field) when it applies it
    malformed = signed_report(chuangrui_job["vendor_ref"], f"{p[11]},x")
    assert api.get("/callbacks/chuangrui/report", params=malformed).status_code == 200
    moment = datetime.now(UTC).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    mo = {
        "name": "sandbox-mo-name",
        "pwd": CHUANGRUI_MO_PWD,
        "args": f"{p[8]}#@#你好#@#{moment}#@#008",
    }
    assert api.get("/callbacks/chuangrui/mo", params=mo).status_code == 200
    # Replies pushed by the sandbox (POST): Chuangrui MO with its pwd, Veesing with the token
    system.sandbox(
        "POST", "/_sandbox/mo", json={"vendor": "chuangrui", "phone": p[9], "content": "TD"}
    )
    system.sandbox(
        "POST", "/_sandbox/mo", json={"vendor": "veesing", "phone": p[0], "content": "好"}
    )
    wait_until(
        lambda: {p[8], p[9], p[0]} <= {m["phone"] for m in api.get("/v1/inbound").json()},
        timeout_s=20,
        what="the replies to be stored",
    )
    # Operators' requests with a phone in the path or the query string
    assert api.get("/v1/inbound", params={"phone": p[9]}).status_code == 200
    assert api.post("/v1/suppressions", json={"phone": p[10]}).status_code == 201
    assert api.delete(f"/v1/suppressions/{p[10]}").status_code == 204
    wait_until(lambda: all_pushes_applied(system), timeout_s=20, what="every push applied")
    api.close()


def signed_report(sendid: str, phone: str) -> dict[str, str]:
    random, timestamp = secrets.token_hex(8), str(int(time.time()))
    name = hashlib.md5(f"{CHUANGRUI_ACCESS_SECRET}{random}{timestamp}".encode()).hexdigest()
    moment = datetime.now(UTC).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    return {
        "name": name,
        "pwd": CHUANGRUI_REPORT_PWD,
        "random": random,
        "timestamp": timestamp,
        "sendid": sendid,
        "mobile": phone,
        "state": "DELIVRD",
        "time": moment,
    }


def all_pushes_applied(system: System) -> bool:
    engine = sa.create_engine(system.env["HERALD_DATABASE_URL"])
    try:
        with engine.connect() as connection:
            waiting = connection.execute(
                sa.text("SELECT count(*) FROM vendorpush WHERE applied_at IS NULL")
            ).scalar_one()
    finally:
        engine.dispose()
    return waiting == 0


def log_files(system: System) -> dict[str, str]:
    folder = system.folder / "logs"
    files = sorted(folder.glob("*.log"))
    assert {f.name for f in files} >= {"api.log", "worker.log", "beat.log", "sandbox.log"}
    return {f"logs/{f.name}": f.read_text(errors="replace") for f in files}


def store_columns(engine: Engine) -> dict[tuple[str, str], str]:
    """Every column of every table, its values as text, one per line."""
    columns: dict[tuple[str, str], str] = {}
    with engine.connect() as connection:
        for table in sa.inspect(connection).get_table_names():
            result = connection.execute(sa.text(f'SELECT * FROM "{table}"'))
            names = list(result.keys())
            rows = result.all()
            for index, name in enumerate(names):
                columns[(table, name)] = "\n".join(str(row[index]) for row in rows)
    assert columns[("delivery", "phone")]
    return columns


def flower_pages(url: str) -> dict[str, str]:
    """Flower's task list (JSON and HTML) and each task's page, read with its password."""
    assert httpx.get(f"{url}/api/tasks", timeout=10).status_code == 401

    def read(path: str) -> str:
        response = httpx.get(f"{url}{path}", auth=FLOWER_AUTH, timeout=30)
        response.raise_for_status()
        return response.text

    def tasks() -> dict[str, Any]:
        return dict(httpx.get(f"{url}/api/tasks", auth=FLOWER_AUTH, timeout=30).json())

    wait_until(
        lambda: any(t.get("name") == "herald.send_job" for t in tasks().values()),
        timeout_s=20,
        what="Flower to list the send tasks",
    )
    listed = tasks()
    pages = {"flower /api/tasks": read("/api/tasks"), "flower /tasks": read("/tasks")}
    datatable = "draw=1&start=0&length=10000&order[0][column]=0&columns[0][data]=name"
    pages["flower /tasks/datatable"] = read(f"/tasks/datatable?{datatable}")
    interesting = [
        task_id
        for task_id, task in listed.items()
        if task.get("name") not in {"herald.release_due", "herald.sweep"}
    ]
    assert interesting
    for task_id in interesting:
        pages[f"flower /task/{task_id}"] = read(f"/task/{task_id}")
    return pages
