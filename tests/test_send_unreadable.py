"""Unit tests of the send task with the real adapters: a reply that cannot be read after the
request was written leaves its recipients `unknown`, and they are never sent again.

Like tests/test_send_task.py, the task body (`deliver_job`) is called directly; here the
adapters are the real ones, answered by a fake vendor (`httpx.MockTransport`) through the
process's HTTP client, so the whole path from reply bytes to store is exercised.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

import tasks.send
import worker.clients
from tasks.audit import content_digest
from tests.support import SettingsEnv
from tests.test_send_task import (
    deliveries,
    fresh_limits,  # noqa: F401  (a fixture, used by name)
    requeue,
    stored_job,
)
from tests.vendors.fakes import FakeVendor
from worker.enums import Channel, DeliveryStatus, Purpose
from worker.mms import Frame, Media, Mms, mms_to_payload
from worker.store import add_mms_content, decide_audit, queued_vendors, session_scope, utcnow

pytestmark = pytest.mark.usefixtures("store_url", "fresh_limits", "vendor_settings")

PHONES = ["13800138000", "13900139000"]
HTML = b"<html><body><h1>Welcome to nginx!</h1></body></html>"
MMS = Mms("双十一", [Frame(5, "欢迎", Media("gif", b"GIF89a"))])
VEESING_CREATED = b'{"returnStatus": "1", "message": "ok", "taskId": "55"}'


@pytest.fixture
def vendor_settings(settings_env: SettingsEnv) -> None:
    for name, value in {
        "HERALD_CHUANGRUI_URL": "https://chuangrui.example/sms",
        "HERALD_CHUANGRUI_NAME": "name",
        "HERALD_CHUANGRUI_PWD": "pwd",
        "HERALD_FIVEC_APIKEY": "apikey",
        "HERALD_FIVEC_USERNAME": "user",
        "HERALD_FIVEC_PASSWORD": "password",
    }.items():
        settings_env.setenv(name, value)


@pytest.fixture
def answer(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeVendor]:
    """The vendor every adapter talks to in this test; set its `replies`."""
    fake = FakeVendor()
    monkeypatch.setattr(worker.clients, "_client", fake.client())
    monkeypatch.setattr(worker.clients, "_client_pid", os.getpid())
    yield fake


def sent_twice(job_id: str) -> None:
    """Run the job again, as a redelivered task and beat's release would."""
    tasks.send.deliver_job(job_id)
    requeue(job_id)
    tasks.send.deliver_job(job_id)


JOBS = {
    "veesing sms": {"channel": Channel.SMS, "vendor": "veesing"},
    "chuangrui sms": {"channel": Channel.SMS, "vendor": "chuangrui"},
    "fivec mms": {
        "channel": Channel.MMS,
        "vendor": "fivec",
        "content": MMS.title,
        "payload": mms_to_payload(MMS),
    },
    "veesing voice": {
        "channel": Channel.VOICE,
        "vendor": "veesing",
        "content": "1234",
        "phones": PHONES[:1],
        "purpose": Purpose.VERIFICATION,
        "payload": {"template_id": "T1", "variables": "1234", "kind": "code"},
    },
}
BODIES = {
    "html": HTML,
    "truncated": b'{"returnStatus": "1", "message": "ok", "taskId": "33',
    "utf-16": "success:30911175558600".encode("utf-16"),
    "empty": b"",
}


@pytest.mark.parametrize("body", list(BODIES.values()), ids=list(BODIES))
@pytest.mark.parametrize("job", list(JOBS.values()), ids=list(JOBS))
def test_an_unreadable_reply_leaves_the_batch_unknown_and_it_is_never_resent(
    answer: FakeVendor, job: dict[str, object], body: bytes
) -> None:
    answer.replies = [body]
    job_id = stored_job(**job)

    tasks.send.deliver_job(job_id)

    assert len(answer.requests) == 1
    rows = deliveries(job_id)
    assert {d.status for d in rows} == {DeliveryStatus.UNKNOWN}
    assert all((d.last_error or "").startswith(f"{d.vendor}: ") for d in rows)

    sent_twice(job_id)

    assert len(answer.requests) == 1
    assert {d.status for d in deliveries(job_id)} == {DeliveryStatus.UNKNOWN}
    with session_scope() as session:
        assert queued_vendors(session, job_id=job_id) == []


def test_a_veesing_mms_send_answered_unreadably_is_unknown_too(answer: FakeVendor) -> None:
    job_id = stored_job(
        channel=Channel.MMS, vendor="veesing", content=MMS.title, payload=mms_to_payload(MMS)
    )
    with session_scope() as session:
        digest = content_digest(mms_to_payload(MMS))
        add_mms_content(session, vendor="veesing", digest=digest, ref="55", now=utcnow())
        decide_audit(session, vendor="veesing", ref="55", approved=True, reason=None, now=utcnow())
    answer.replies = [b'{"returnStatus": "1", "message": "ok", "taskId": "33']

    tasks.send.deliver_job(job_id)
    sent_twice(job_id)

    assert [r.url.path for r in answer.requests] == ["/mmsApi/send"]
    assert {d.status for d in deliveries(job_id)} == {DeliveryStatus.UNKNOWN}


def test_an_unreadable_mms_create_waits_and_creates_again_but_sends_nothing(
    answer: FakeVendor,
) -> None:
    """Creating only stores the content for the vendor's audit: a second create after an
    unreadable one messages no one (tasks/audit.py, `hold_queued_after_error`)."""
    job_id = stored_job(
        channel=Channel.MMS, vendor="veesing", content=MMS.title, payload=mms_to_payload(MMS)
    )
    answer.replies = [HTML, VEESING_CREATED]

    tasks.send.deliver_job(job_id)

    assert {d.status for d in deliveries(job_id)} == {DeliveryStatus.DEFERRED}
    requeue(job_id)
    tasks.send.deliver_job(job_id)

    assert [r.url.path for r in answer.requests] == ["/mmsApi/create", "/mmsApi/create"]
    assert {d.status for d in deliveries(job_id)} == {DeliveryStatus.AWAITING_AUDIT}


def test_a_gateway_page_after_the_request_is_unknown(answer: FakeVendor) -> None:
    answer.replies = [httpx.Response(520, content=HTML)]
    job_id = stored_job(channel=Channel.SMS, vendor="veesing")

    sent_twice(job_id)

    assert len(answer.requests) == 1
    assert {d.status for d in deliveries(job_id)} == {DeliveryStatus.UNKNOWN}
