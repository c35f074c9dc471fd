"""Integration: Chuangrui SMS, every documented reply and push, end to end.

Each test drives the real system (POST /v1/sms with vendor "chuangrui" → Celery worker → sandbox
→ signed status-report push → API → worker → store) into one reply of the document's tables, or
one of its pushes, and asserts what the store then says about the recipient (GET
/v1/messages/{id}, and the store itself for what the API does not show: the status history,
`not_before`, the stored pushes).

How each reply is provoked: by the sandbox's own mechanism where it has one (sensitive words in
the content or the sign, SQL in the content, a cancelled or disabled account, an IP block, the
REJECT audit, the undeliverable list, an MO), otherwise by its `reply_message` fault on
`/chuangrui/sms`. Report words the sandbox does not choose on demand (DTBLACK, ERR:104, a given
one of UNDELIV/EXPIRED/REJECTD/UNKNOWN) are pushed by the test itself, signed as section 3.1
says, about a recipient the vendor took but will never report on: a number on the sandbox's
blacklist (answered `0,<sendid>,0,0,1,提交成功`, nothing sent, nothing pushed), so the test's push
is the only report that recipient gets. Every test uses its own phone numbers; the autouse
`scene` fixture cancels what a test left waiting, closes Chuangrui's breaker, clears faults and
puts the sandbox account and lists back as it found them.

Reply or push → how it is provoked → where the recipient ends:

- 0 提交成功 + report DELIVRD → a plain send → submitted, then delivered (DELIVRD kept)
- 1 含有敏感詞匯 → 敏感词 in the content → failed, last_error `chuangrui: 1,含有敏感詞匯`
- 2 含有敏感詞匯 → 敏感词 in the 【sign】 → failed
- 3 沒有號碼 → fault → failed (RecipientRejected)
- 4 包含sql語句 → `select … from` in the content → failed
- 14 格式錯誤 → fault → failed
- 10 賬號不存在 → fault; 11 賬號注銷 → state `cancelled`; 12 賬號停用 → state `disabled`;
  13 IP鑒權失敗 → state `ip_blocked` → deferred for the 300 s cooldown, breaker open
  (or, failover allowed, sent and delivered through Veesing)
- -1 系統異常 → fault until lifted → deferred, then delivered, sent exactly once
- a bare `0` (no sendid) → fault → unknown, not resent; an undocumented code → fault, twice →
  failed after HERALD_UNKNOWN_REPLY_ATTEMPTS
- report DELIVRD → delivered; UNDELIV, EXPIRED, REJECTD, DTBLACK, REJECT → undelivered;
  UNKNOWN, ERR:104, another gateway word → unknown; each word kept as vendor_status
- one report naming several mobiles → each of them settled
- a forged report (bad MD5, stale or future timestamp, no signature, the document's unsigned
  example), by GET or POST → 403, the delivery unchanged, no push stored
- MO → `/_sandbox/mo` → GET /v1/inbound; two records in one push (`#@@#`) → two rows;
  MO `退订` → GET /v1/suppressions, and its next marketing SMS fails
- balance: 0,<balance> and each balance code 10–13 → the adapter's `balance()` → result / class
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from tests.integration.conftest import System
from tests.integration.scene import (
    COOLDOWN_S,
    RESTING_OR_SUBMITTED,
    SHANGHAI,
    parse_time,
    shanghai_time,
)
from tests.integration.scene import Scene as BaseScene
from worker.errors import NotSent, UnknownReply, VendorBlocked
from worker.store import VendorPush
from worker.vendors.chuangrui import Balance, Chuangrui, ChuangruiCredentials

pytestmark = pytest.mark.integration

SEND_PATH = "/chuangrui/sms"
RESTING = RESTING_OR_SUBMITTED  # a sent recipient rests in submitted until its report
MAX_AGE_S = 300  # HERALD_CHUANGRUI_PUSH_MAX_AGE_S, the fixture leaves it at its default
REPORT_STATES = {
    "DELIVRD": "delivered",
    "UNDELIV": "undelivered",
    "EXPIRED": "undelivered",
    "REJECTD": "undelivered",
    "DTBLACK": "undelivered",
    "REJECT": "undelivered",
    "UNKNOWN": "unknown",
    "ERR:104": "unknown",
    "MK:0005": "unknown",  # "其他: 網關內部狀態", a gateway's own word
}
"""Section 3.2's words and the status each must leave the recipient in
(worker/delivery_reports.py)."""


def sign(secret: str, random: str, timestamp: str) -> str:
    """Section 3.1: name = MD5(AccessSecret + random + timestamp), lower-case hex."""
    return hashlib.md5(f"{secret}{random}{timestamp}".encode()).hexdigest()


def shanghai_text(moment: datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


class Scene(BaseScene):
    """One test's view of the system, for Chuangrui SMS."""

    account_name = "chuangrui"
    send_path = SEND_PATH
    breaker_keys = ("herald:breaker:chuangrui:sms",)
    restored_state = ("undeliverable", "blacklist")

    def __init__(self, system: System, engine: Engine) -> None:
        super().__init__(system, engine)
        self.secret = system.env["HERALD_CHUANGRUI_ACCESS_SECRET"]

    # --- acting ---

    def sms(self, to: list[str], content: str = "【Herald】您好", **extra: Any) -> str:
        return self.track(self.system.send_sms(to, content, vendor="chuangrui", **extra))

    def blacklist(self, phones: list[str]) -> None:
        current = self.system.sandbox("GET", "/_sandbox/state")["blacklist"]
        self.system.sandbox("POST", "/_sandbox/state", json={"blacklist": [*current, *phones]})

    def adapter(self, credentials: ChuangruiCredentials | None = None) -> Chuangrui:
        """Our adapter, called directly from the test (not through herald's worker)."""
        return Chuangrui(
            self.client,
            f"{self.system.sandbox_url}{SEND_PATH}",
            credentials or ChuangruiCredentials("sandbox-name", "sandbox-pwd"),
        )

    def report(
        self,
        method: str,
        *,
        sendid: str,
        mobile: str,
        state: str,
        time_text: str,
        signed: bool = True,
        secret: str | None = None,
        timestamp: int | None = None,
    ) -> httpx.Response:
        """Push a status report as Chuangrui does: GET (query string) or POST (form)."""
        random = secrets.token_hex(8)
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        fields = {"pwd": "", "sendid": sendid, "time": time_text, "mobile": mobile}
        fields |= {"state": state, "random": random, "timestamp": stamp}
        if signed:
            fields["name"] = sign(self.secret if secret is None else secret, random, stamp)
        return self.raw_report(method, fields)

    def raw_report(self, method: str, fields: dict[str, str]) -> httpx.Response:
        url = f"{self.system.api_url}/callbacks/chuangrui/report"
        if method == "GET":
            return self.client.get(url, params=fields)
        return self.client.post(url, data=fields)

    def mo(self, phone: str, content: str, **extra: Any) -> dict[str, str]:
        body = {"vendor": "chuangrui", "phone": phone, "content": content, **extra}
        return dict(self.system.sandbox("POST", "/_sandbox/mo", json=body))

    # --- observing ---

    def by_phone(
        self, job_id: str, *, until: set[str], timeout_s: float = 10
    ) -> dict[str, dict[str, Any]]:
        """The job's recipients by phone, once every status is one of `until`."""
        recipients = self.recipients(job_id, until=until, timeout_s=timeout_s)
        return {r["phone"]: r for r in recipients}

    def stored_pushes(self, kind: str, key: str, value: str) -> list[VendorPush]:
        """Chuangrui pushes of `kind` in the store whose field `key` contains `value`."""
        with Session(self.engine) as session:
            rows = session.exec(select(VendorPush).where(col(VendorPush.kind) == kind)).all()
        return [r for r in rows if r.vendor == "chuangrui" and value in r.payload.get(key, "")]

    def applied_reports(
        self, sendid: str, count: int = 1, timeout_s: float = 10
    ) -> list[VendorPush]:
        """The stored report pushes about `sendid`, once `count` of them have been applied."""
        deadline = time.monotonic() + timeout_s
        while True:
            rows = self.stored_pushes("report", "sendid", sendid)
            if len(rows) >= count and all(r.applied_at is not None for r in rows):
                return rows
            assert time.monotonic() < deadline, f"reports of {sendid} not applied: {rows}"
            time.sleep(0.1)

    def reports_pushed(self, sendid: str) -> list[dict[str, str]]:
        """The fields of the report pushes the sandbox delivered about `sendid`."""
        return self.pushes("chuangrui_report", "sendid", sendid)


@pytest.fixture(autouse=True)
def scene(system: System, engine: Engine) -> Iterator[Scene]:
    yield from Scene.staged(system, engine)


def changes(history: list[str]) -> list[str]:
    """The statuses a recipient went through, a repeated one counted once (a report that leaves
    a recipient unknown records unknown→unknown as well: see the xfail test below)."""
    return [status for i, status in enumerate(history) if i == 0 or history[i - 1] != status]


def awaiting_report(scene: Scene, phones: list[str]) -> tuple[str, str]:
    """A job the vendor took (`0,<sendid>,...`) whose only reports will be the test's own:
    its numbers are on the vendor's blacklist, so nothing is sent and nothing is pushed.
    Returns the job id and the sendid every recipient is submitted with."""
    scene.blacklist(phones)
    job_id = scene.sms(phones)
    recipients = scene.by_phone(job_id, until=RESTING)
    assert {r["status"] for r in recipients.values()} == {"submitted"}, recipients
    refs = {r["vendor_ref"] for r in recipients.values()}
    (sendid,) = refs
    assert sendid is not None and len(sendid) == 26
    for phone in phones:
        assert scene.sends_to(phone) == []
        assert scene.history(job_id, phone) == ["claimed", "sending", "submitted"]
    assert scene.stored_pushes("report", "sendid", sendid) == []
    return job_id, sendid


# --- 0 提交成功 and the signed status report ----------------------------------------------------


def test_an_accepted_send_is_submitted_then_delivered_by_the_vendors_signed_report(
    scene: Scene,
) -> None:
    # Given a number the sandbox delivers to; When an SMS is posted through Chuangrui
    job_id = scene.sms(["13602020001"])

    # Then the vendor took it (0,sendid,...) and its DELIVRD report delivered it
    (recipient,) = scene.system.wait_settled([job_id], timeout_s=15)[0]["recipients"]
    (sent,) = scene.sends_to("13602020001")
    (report,) = scene.reports_pushed(sent["ref"])
    assert report["name"] == sign(scene.secret, report["random"], report["timestamp"])
    assert (report["mobile"], report["state"]) == ("13602020001", "DELIVRD")
    assert recipient["status"] == "delivered"
    assert recipient["vendor_ref"] == sent["ref"] == report["sendid"]
    assert recipient["vendor_status"] == "DELIVRD"
    assert parse_time(recipient["reported_at"]) == shanghai_time(report["time"])
    assert recipient["last_error"] is None
    assert scene.history(job_id, "13602020001") == ["claimed", "sending", "submitted", "delivered"]
    # And the push was stored as received, then applied
    (stored,) = scene.stored_pushes("report", "sendid", sent["ref"])
    assert stored.payload == report
    assert stored.outcome == "applied"
    # And the sign went as its own field, the content without it
    assert (sent["sign"], sent["content"]) == ("Herald", "您好")


def test_one_report_naming_both_numbers_of_a_batch_delivers_each_of_them(scene: Scene) -> None:
    # Given two numbers the sandbox delivers to; When one SMS to both is posted
    job_id = scene.sms(["13602020011", "13602020012"])

    # Then one send took both, and one DELIVRD report naming both delivered each
    (job,) = scene.system.wait_settled([job_id], timeout_s=15)
    (first,), (second,) = scene.sends_to("13602020011"), scene.sends_to("13602020012")
    assert first["ref"] == second["ref"]
    (report,) = scene.reports_pushed(first["ref"])
    assert report["mobile"] == "13602020011,13602020012"
    assert {r["phone"]: (r["status"], r["vendor_status"]) for r in job["recipients"]} == {
        "13602020011": ("delivered", "DELIVRD"),
        "13602020012": ("delivered", "DELIVRD"),
    }


def test_content_the_vendor_rejects_in_audit_is_reported_reject_and_undelivered(
    scene: Scene,
) -> None:
    # Given content the sandbox's audit rejects (审核駁回); When it is posted
    job_id = scene.sms(["13602020021"], "【Herald】REJECT 测试")

    # Then the vendor took it, and its REJECT report leaves the recipient undelivered
    recipient = scene.recipient(job_id, until={"delivered", "undelivered", "unknown"})
    (sent,) = scene.sends_to("13602020021")
    (report,) = scene.reports_pushed(sent["ref"])
    assert report["state"] == "REJECT"
    assert (recipient["status"], recipient["vendor_status"]) == ("undelivered", "REJECT")


def test_a_number_the_carrier_does_not_deliver_to_gets_the_status_of_its_reported_word(
    scene: Scene,
) -> None:
    # Given a number the sandbox's carrier will not deliver to
    scene.account(undeliverable=["13602020031"])

    # When an SMS is posted to it
    job_id = scene.sms(["13602020031"])

    # Then the sandbox reports one of its failure words, and the recipient has that word's status
    recipient = scene.recipient(job_id, until={"delivered", "undelivered", "unknown"})
    (sent,) = scene.sends_to("13602020031")
    (report,) = scene.reports_pushed(sent["ref"])
    assert report["state"] in {"UNDELIV", "EXPIRED", "REJECTD", "UNKNOWN"}
    assert recipient["status"] == REPORT_STATES[report["state"]]
    assert recipient["vendor_status"] == report["state"]


# --- every report word, pushed by the test ----------------------------------------------------


@pytest.mark.parametrize(
    ("state", "phone"),
    [(state, f"136020201{n:02d}") for n, state in enumerate(REPORT_STATES)],
)
def test_each_report_word_leaves_the_recipient_in_its_status_with_the_word_kept(
    scene: Scene, state: str, phone: str
) -> None:
    # Given a recipient the vendor took and has not reported on yet
    job_id, sendid = awaiting_report(scene, [phone])

    # When Chuangrui pushes a signed report with that word
    reported = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=3)
    response = scene.report(
        "POST", sendid=sendid, mobile=phone, state=state, time_text=shanghai_text(reported)
    )
    assert response.status_code == 200, response.text

    # Then the push is stored and applied, and the recipient has the word's status and the word
    scene.applied_reports(sendid)
    recipient = scene.recipient(job_id, until=RESTING - {"submitted"})
    assert recipient["status"] == REPORT_STATES[state]
    assert recipient["vendor_status"] == state
    assert recipient["vendor_ref"] == sendid
    assert parse_time(recipient["reported_at"]) == reported
    assert recipient["last_error"] is None
    assert changes(scene.history(job_id, phone)) == [
        "claimed",
        "sending",
        "submitted",
        REPORT_STATES[state],
    ]


def test_a_report_that_leaves_the_recipient_unknown_records_one_status_change(
    scene: Scene,
) -> None:
    # Given a recipient the vendor took and has not reported on yet
    job_id, sendid = awaiting_report(scene, ["13602020191"])

    # When Chuangrui reports ERR:104 (系統忙) for it
    scene.report(
        "POST",
        sendid=sendid,
        mobile="13602020191",
        state="ERR:104",
        time_text=shanghai_text(datetime.now(UTC)),
    ).raise_for_status()
    scene.applied_reports(sendid)

    # Then its history has one change for that one report: submitted → unknown
    _, _, events = scene.stored(job_id, "13602020191")
    assert [(e.from_status, e.to_status) for e in events] == [
        ("queued", "claimed"),
        ("claimed", "sending"),
        ("sending", "submitted"),
        ("submitted", "unknown"),
    ]


def test_a_recipient_left_unknown_by_err_104_is_settled_by_a_later_delivrd(scene: Scene) -> None:
    # Given a recipient reported ERR:104 (系統忙: not a final word)
    job_id, sendid = awaiting_report(scene, ["13602020201"])
    first = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    scene.report(
        "POST", sendid=sendid, mobile="13602020201", state="ERR:104", time_text=shanghai_text(first)
    ).raise_for_status()
    scene.applied_reports(sendid)
    assert scene.recipient(job_id, until=RESTING)["status"] == "unknown"

    # When the vendor later reports DELIVRD for it
    later = first + timedelta(seconds=2)
    scene.report(
        "POST", sendid=sendid, mobile="13602020201", state="DELIVRD", time_text=shanghai_text(later)
    ).raise_for_status()

    # Then it is delivered
    scene.applied_reports(sendid, count=2)
    recipient = scene.recipient(job_id, until={"delivered"})
    assert (recipient["vendor_status"], parse_time(recipient["reported_at"])) == ("DELIVRD", later)
    assert changes(scene.history(job_id, "13602020201")) == [
        "claimed",
        "sending",
        "submitted",
        "unknown",
        "delivered",
    ]


def test_one_report_listing_several_mobiles_settles_each_of_them_and_no_other(
    scene: Scene,
) -> None:
    # Given three recipients of one batch (one sendid) the vendor has not reported on
    phones = ["13602020211", "13602020212", "13602020213"]
    job_id, sendid = awaiting_report(scene, phones)
    now = shanghai_text(datetime.now(UTC))

    # When one signed push reports UNDELIV for the first two, comma-separated ("狀態相同時")
    scene.report(
        "POST", sendid=sendid, mobile="13602020211,13602020212", state="UNDELIV", time_text=now
    ).raise_for_status()
    scene.applied_reports(sendid)

    # Then both are undelivered, and the third still waits for its own report
    after_first = scene.by_phone(job_id, until=RESTING)
    assert {p: (r["status"], r["vendor_status"]) for p, r in after_first.items()} == {
        "13602020211": ("undelivered", "UNDELIV"),
        "13602020212": ("undelivered", "UNDELIV"),
        "13602020213": ("submitted", None),
    }

    # And when a push reports DELIVRD for the third alone ("不同時 為單個手機號碼"), it is delivered
    scene.report(
        "GET", sendid=sendid, mobile="13602020213", state="DELIVRD", time_text=now
    ).raise_for_status()
    scene.applied_reports(sendid, count=2)
    final = scene.by_phone(job_id, until=RESTING - {"submitted"})
    assert {p: (r["status"], r["vendor_status"]) for p, r in final.items()} == {
        "13602020211": ("undelivered", "UNDELIV"),
        "13602020212": ("undelivered", "UNDELIV"),
        "13602020213": ("delivered", "DELIVRD"),
    }


# --- forged reports: 403, nothing stored, nothing moved ---------------------------------------

FORGERIES = ["bad md5", "stale timestamp", "future timestamp", "no signature", "document example"]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("forgery", FORGERIES)
def test_a_forged_report_answers_403_and_changes_nothing(
    scene: Scene, forgery: str, method: str
) -> None:
    # Given a recipient the vendor took and has not reported on yet
    phone = f"1360202{FORGERIES.index(forgery) + 1}{['GET', 'POST'].index(method)}01"
    job_id, sendid = awaiting_report(scene, [phone])
    now, time_text = int(time.time()), shanghai_text(datetime.now(UTC))

    def delivrd(**forged: Any) -> httpx.Response:
        return scene.report(
            method, sendid=sendid, mobile=phone, state="DELIVRD", time_text=time_text, **forged
        )

    # When a forged DELIVRD report about it arrives
    if forgery == "bad md5":
        response = delivrd(secret="not-the-access-secret")
    elif forgery == "stale timestamp":  # signed right, but older than the window
        response = delivrd(timestamp=now - MAX_AGE_S - 5)
    elif forgery == "future timestamp":  # |now - timestamp| is the window, either side
        response = delivrd(timestamp=now + MAX_AGE_S + 5)
    elif forgery == "no signature":  # random and timestamp, but no name
        response = delivrd(signed=False)
    else:  # section 3.3's own example: name=admin&pwd=12345, no random or timestamp
        response = scene.raw_report(
            method,
            {
                "name": "admin",
                "pwd": "12345",
                "sendid": sendid,
                "time": time_text,
                "mobile": phone,
                "state": "DELIVRD",
            },
        )

    # Then it is refused, nothing is stored, and the recipient still waits for its report
    assert response.status_code == 403, response.text
    time.sleep(0.5)  # what an accepted push would have moved by now (it is applied in ~0.1 s)
    assert scene.stored_pushes("report", "sendid", sendid) == []
    recipient = scene.recipient(job_id, until=RESTING)
    assert (recipient["status"], recipient["vendor_status"]) == ("submitted", None)
    assert scene.history(job_id, phone) == ["claimed", "sending", "submitted"]

    # While the same report, signed with the secret and fresh, is accepted the same way
    genuine = delivrd()
    assert genuine.status_code == 200, genuine.text
    scene.applied_reports(sendid)
    assert scene.recipient(job_id, until=RESTING - {"submitted"})["status"] == "delivered"


# --- send replies: refusals of the message or the number → failed ------------------------------


@pytest.mark.parametrize(
    ("phone", "content", "fault", "reply"),
    [
        ("13602020301", "【Herald】这条短信含有敏感词", None, "1,含有敏感詞匯"),
        ("13602020302", "【敏感词签名】您好", None, "2,含有敏感詞匯"),
        ("13602020303", "【Herald】您好", "3,沒有號碼", "3,沒有號碼"),
        ("13602020304", "【Herald】select name from users", None, "4,包含sql語句"),
        ("13602020305", "【Herald】您好", "14,格式錯誤", "14,格式錯誤"),
    ],
    ids=["1-sensitive-content", "2-sensitive-sign", "3-no-number", "4-sql", "14-format"],
)
def test_a_refusal_of_the_message_or_the_number_fails_the_recipient_with_the_vendors_words(
    scene: Scene, phone: str, content: str, fault: str | None, reply: str
) -> None:
    # Given the vendor will refuse the send with the reply (provoked by the content or the
    # sign where a request can provoke it, else by a fault on the next send)
    if fault is not None:
        scene.fault(fault)
    start = time.time()

    # When an SMS is posted
    job_id = scene.sms([phone], content)

    # Then the recipient failed with the vendor's words, after one call, never sent or retried
    recipient = scene.recipient(job_id, until=RESTING - {"submitted"})
    assert recipient["status"] == "failed"
    assert recipient["last_error"] == f"chuangrui: {reply}"
    assert (recipient["vendor_ref"], recipient["vendor_status"]) == (None, None)
    assert scene.history(job_id, phone) == ["claimed", "sending", "failed"]
    (request,) = scene.requests_since(start)
    if fault is None:
        assert (request["outcome"], request["detail"]) == ("error", reply)
    else:
        assert request["outcome"] == "fault:reply"
    assert scene.sends_to(phone) == []
    assert scene.breaker()[0] is None


# --- send replies: refusals of the account → the vendor is left alone, the job waits ----------


def provoke_account_refusal(scene: Scene, code: str) -> None:
    if code == "10":
        scene.fault("10,賬號不存在")  # herald's own credentials cannot be changed under it
    elif code == "11":
        scene.account(status="cancelled")
    elif code == "12":
        scene.account(status="disabled")
    else:
        scene.account(ip_blocked=True)


ACCOUNT_REFUSALS = [
    ("10", "10,賬號不存在"),
    ("11", "11,賬號注銷"),
    ("12", "12,賬號停用"),
    ("13", "13,IP鑒權失敗"),
]


@pytest.mark.parametrize(("code", "reply"), ACCOUNT_REFUSALS)
def test_a_refusal_of_the_account_defers_the_recipient_for_the_cooldown_and_opens_the_breaker(
    scene: Scene, code: str, reply: str
) -> None:
    # Given the vendor refuses the account with the code
    provoke_account_refusal(scene, code)
    phone = f"136020204{code}"

    # When an SMS that may not fail over is posted
    job_id = scene.sms([phone], allow_failover=False)

    # Then it waits out the vendor-blocked cooldown with the vendor's words, nothing was sent,
    # and the fleet stops calling Chuangrui SMS
    recipient = scene.recipient(job_id, until=RESTING - {"submitted"})
    assert recipient["status"] == "deferred"
    assert recipient["last_error"] == f"chuangrui: {reply} (attempt 1)"
    vendor, not_before, events = scene.stored(job_id, phone)
    deferral = [e for e in events if e.to_status == "deferred"][-1]
    assert not_before is not None and vendor == "chuangrui"
    assert timedelta(seconds=COOLDOWN_S - 1) <= not_before - deferral.at
    assert not_before - deferral.at <= timedelta(seconds=COOLDOWN_S)
    assert [e.to_status for e in events] == ["claimed", "sending", "deferred"]
    reason, left_s = scene.breaker()
    assert reason == reply
    assert 0 < left_s <= COOLDOWN_S
    assert scene.sends_to(phone) == []


def test_a_refusal_of_the_account_fails_the_recipient_over_to_veesing_where_it_is_delivered(
    scene: Scene,
) -> None:
    # Given the Chuangrui account is disabled (12,賬號停用)
    scene.account(status="disabled")

    # When an SMS is posted with the default routing (failover allowed)
    job_id = scene.sms(["13602020501"])

    # Then Chuangrui refused it, it went through Veesing instead, and was delivered there
    (recipient,) = scene.system.wait_settled([job_id], timeout_s=15)[0]["recipients"]
    vendor, _, events = scene.stored(job_id, "13602020501")
    assert recipient["status"] == "delivered"
    assert vendor == "veesing"
    assert "failed over to veesing: chuangrui: 12,賬號停用" in [e.detail for e in events]
    assert [s["vendor"] for s in scene.sends_to("13602020501")] == ["veesing"]
    assert scene.breaker()[0] == "12,賬號停用"


# --- -1 系統異常: a passing fault, retried -----------------------------------------------------


def test_a_system_error_defers_the_recipient_and_once_lifted_it_is_delivered_sent_once(
    scene: Scene,
) -> None:
    # Given the vendor answers every send -1,系統異常 (the sandbox's own retry-able reply)
    scene.fault(None, times=None)

    # When an SMS is posted
    job_id = scene.sms(["13602020601"])

    # Then the recipient is deferred with the vendor's words
    waiting = scene.recipient(job_id, until=RESTING - {"submitted"})
    assert waiting["status"] == "deferred"
    assert waiting["last_error"] == "chuangrui: -1,系統異常 (attempt 1)"
    assert scene.sends_to("13602020601") == []

    # And once the vendor recovers, it is retried and delivered
    scene.system.sandbox("POST", "/_sandbox/faults", json={})
    (recipient,) = scene.system.wait_settled([job_id], timeout_s=20)[0]["recipients"]
    assert recipient["status"] == "delivered"
    assert recipient["last_error"] is None
    _, _, events = scene.stored(job_id, "13602020601")
    deferrals = [e.detail for e in events if e.to_status == "deferred"]
    assert deferrals == [
        f"chuangrui: -1,系統異常 (attempt {n})" for n in range(1, len(deferrals) + 1)
    ]
    assert [e.to_status for e in events][-4:] == ["claimed", "sending", "submitted", "delivered"]
    # And the vendor sent it exactly once
    (sent,) = scene.sends_to("13602020601")
    assert sent["ref"] == recipient["vendor_ref"]


def test_a_success_code_without_a_sendid_leaves_the_recipient_unknown_and_never_resends(
    scene: Scene,
) -> None:
    # Given the vendor answers the next send a bare `0` (提交成功, but no sendid to match)
    scene.fault("0")
    start = time.time()

    # When an SMS is posted
    job_id = scene.sms(["13602020611"])

    # Then the vendor may have taken it: unknown, saying why, and not sent again
    recipient = scene.recipient(job_id, until=RESTING - {"submitted"})
    assert recipient["status"] == "unknown"
    assert recipient["last_error"] == ("chuangrui: code 0 without the documented six fields: '0'")
    assert changes(scene.history(job_id, "13602020611")) == ["claimed", "sending", "unknown"]
    time.sleep(1.5)  # three release intervals: long enough for a resend to have happened
    assert len(scene.requests_since(start)) == 1


def test_a_reply_no_document_lists_is_retried_on_the_small_budget_then_failed(
    scene: Scene,
) -> None:
    # Given the vendor answers the next two sends with a code section 1.7.3 does not list
    scene.fault("99,系統維護", times=2)

    # When an SMS is posted
    job_id = scene.sms(["13602020621"])

    # Then it is retried once (HERALD_UNKNOWN_REPLY_ATTEMPTS = 2) and then failed verbatim
    (recipient,) = scene.system.wait_settled([job_id], timeout_s=15)[0]["recipients"]
    assert recipient["status"] == "failed"
    assert recipient["last_error"] == (
        "chuangrui: undocumented reply: '99,系統維護' (gave up after 2 attempts)"
    )
    assert scene.sends_to("13602020621") == []


# --- MO (uplink) pushes -----------------------------------------------------------------------


def test_an_mo_push_is_stored_as_an_inbound_message_with_our_extension(scene: Scene) -> None:
    # When a handset's MO arrives, sent to our extension 123 (after the system's 008)
    pushed = scene.mo("13602020701", "收到,谢谢", extno="123")

    # Then it is kept as inbound, with the custom part of the extension as its reference
    (message,) = scene.inbound("13602020701")
    phone, content, moment, extension = pushed["args"].split("#@#")
    assert (phone, content, extension) == ("13602020701", "收到,谢谢", "008123")
    assert (message["vendor"], message["phone"], message["content"], message["vendor_ref"]) == (
        "chuangrui",
        "13602020701",
        "收到,谢谢",
        "123",
    )
    assert parse_time(message["received_at"]) == shanghai_time(moment)
    assert "13602020701" not in scene.suppressed()


def test_two_mos_in_one_push_are_stored_as_two_inbound_messages(scene: Scene) -> None:
    # When one push carries two MOs (records joined by #@@#)
    pushed = scene.mo(
        "13602020711",
        "第一条",
        more=[{"vendor": "chuangrui", "phone": "13602020712", "content": "第二条"}],
    )
    assert pushed["args"].count("#@@#") == 1

    # Then each is kept as its own inbound message, from one stored push
    (first,) = scene.inbound("13602020711")
    (second,) = scene.inbound("13602020712")
    assert (first["content"], second["content"]) == ("第一条", "第二条")
    assert first["vendor"] == second["vendor"] == "chuangrui"
    (push,) = scene.stored_pushes("mo", "args", "13602020711")
    assert push.payload["args"] == pushed["args"]
    assert push.outcome == "2 inbound stored"


def test_an_mo_of_tuiding_suppresses_the_number_and_its_next_marketing_sms_fails(
    scene: Scene,
) -> None:
    # Given a number whose owner has not opted out
    assert "13602020721" not in scene.suppressed()

    # When its owner sends 退订
    scene.mo("13602020721", "退订")

    # Then the MO is kept and the number is suppressed, saying why
    (message,) = scene.inbound("13602020721")
    assert message["content"] == "退订"
    scene.wait_suppressed("13602020721")
    assert scene.suppressed()["13602020721"] == "replied '退订' via chuangrui"

    # And a marketing SMS to it fails without reaching the vendor
    recipient = scene.recipient(scene.sms(["13602020721"]), until=RESTING - {"submitted"})
    assert recipient["status"] == "failed"
    assert recipient["last_error"] == "suppressed: replied '退订' via chuangrui"
    assert scene.sends_to("13602020721") == []


# --- balance (type=balance), through the adapter -----------------------------------------------


def test_the_balance_is_the_accounts_balance(scene: Scene) -> None:
    # Given the sandbox account holds a known balance
    scene.account(balance=4321)

    # When the adapter asks for the balance; Then it is that number
    assert scene.adapter().balance() == Balance(Decimal(4321))


@pytest.mark.parametrize(
    ("provoke", "error", "reply"),
    [
        ("wrong credentials", VendorBlocked, "10,賬戶不存在"),
        ("cancelled", VendorBlocked, "11,賬號注銷"),
        ("disabled", VendorBlocked, "12,賬號停用"),
        ("ip blocked", VendorBlocked, "13,IP鑒權失敗"),
        ("undocumented", UnknownReply, "-1,系統異常"),
    ],
)
def test_each_documented_balance_code_raises_its_class(
    scene: Scene, provoke: str, error: type[NotSent], reply: str
) -> None:
    # Given the sandbox will refuse the balance query for one reason (section 2.4's codes;
    # -1 is listed for sends only, so for the balance it is a reply no document lists)
    credentials = None
    if provoke == "wrong credentials":
        credentials = ChuangruiCredentials("sandbox-name", "not-the-pwd")
    elif provoke in {"cancelled", "disabled"}:
        scene.account(status=provoke)
    elif provoke == "ip blocked":
        scene.account(ip_blocked=True)
    else:
        scene.fault(None)

    # When the adapter asks for the balance
    with pytest.raises(NotSent) as raised:
        scene.adapter(credentials).balance()

    # Then it raises exactly the class the reply maps to, with the vendor's words
    assert type(raised.value) is error
    assert raised.value.vendor == "chuangrui"
    if error is UnknownReply:
        assert raised.value.reply == f"undocumented reply: {reply!r}"
    else:
        assert raised.value.reply == reply
