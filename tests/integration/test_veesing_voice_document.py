"""Integration: Veesing voice (document 004), every documented reply and push, end to end.

Each test drives the real system (POST /v1/voice → Celery worker → sandbox → receipt push → API
→ worker → store) into one reply of the document's status table, or its receipt push, and
asserts what the store then says about the recipient (GET /v1/messages/{id}, and the store
itself for `not_before` and the status history, which the API does not show).

Voice has one vendor, so nothing fails over; its daily-cap policy is `fail` (a voice code
tomorrow is worthless). The sandbox approves template 724 (a code) and 725 (a notice).

Reply or push → how it is provoked → where the recipient ends:

- 发送成功 + receipt status 1 → a plain call (code 724, notice 725) → delivered, with the
  receipt's code, talktime and remark kept in recipients[].report_detail
- receipt status 0 → the `undeliverable` list → undelivered, code, talktime 0 and remark kept
- 缺少参数, 手机号码格式不正确 → fault → failed, last_error the vendor's words
- 模板不存在或者未通过 → an unapproved template (999) → failed
- 模板id格式不正确 → a template id that is not digits (abc) → failed
- 参数错误 (the document's failure sample) → a notice's text to the code template → failed
- 账号或密码错误 → fault; 您的账户已被锁定,请联系您的专属客服 → state `locked`;
  余额不足 → state `balance: 0`; IP受限 → state `ip_blocked` → deferred for the 300 s
  cooldown, the voice breaker open
- 相同手机号码一分钟之内只可发送一次 → the sandbox's own rule → deferred 60 s
- 该号码今日发送次数已达上限 → the sandbox's own cap → failed (policy `fail`)
- 当日发送量已超出最大发送限制 → fault → failed (policy `fail`)
- 未知原因,请联系客服 → fault, once → deferred, retried, delivered, called once
- balance: 成功 (at both documented addresses) and each balance error → the adapter's
  `balance()` → result / error class
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import redis
from sqlalchemy.engine import Engine
from sqlmodel import Session

from tests.integration.conftest import System
from worker.errors import (
    MessageRejected,
    NotSent,
    QuotaExceeded,
    TransientError,
    VendorBlocked,
)
from worker.store import DeliveryEvent, deliveries_of, events_of, make_engine
from worker.vendors.veesing import Balance, VeesingCredentials
from worker.vendors.veesing_voice import VeesingVoice

pytestmark = pytest.mark.integration

ACCOUNT = "veesing_voice"
SEND_PATH = "/voiceApi"
BALANCE_PATH = "/voiceApi/getBalance"
SAMPLE_BALANCE_PATH = "/voiceApi/group/getBalance"
BREAKER_KEY = "herald:breaker:veesing:voice"
SHANGHAI = ZoneInfo("Asia/Shanghai")
RESTING = {"deferred", "failed", "delivered", "undelivered", "unknown", "cancelled"}
"""Statuses a recipient stays in for a while: a test waits for one, then asserts which."""
CODE = {"template_id": "724", "variables": "1234", "kind": "code"}
LOCKED = "您的账户已被锁定,请联系您的专属客服"
COOLDOWN_S = 300  # HERALD_VENDOR_BLOCKED_COOLDOWN_S, the fixture leaves it at its default


class Scene:
    """One test's view of the system: what it submitted and the sandbox knobs it turned."""

    def __init__(self, system: System, engine: Engine) -> None:
        self.system = system
        self.engine = engine
        self.jobs: list[str] = []
        self.client = httpx.Client(timeout=10)

    # --- acting ---

    def call(self, phone: str, **body: str) -> str:
        """POST /v1/voice to one phone (the voice code 1234 through template 724 unless told)."""
        job_id = self.system.submit("/v1/voice", {"to": [phone], **CODE, **body})
        self.jobs.append(job_id)
        return job_id

    def fault(self, message: str, *, times: int = 1, path: str = SEND_PATH) -> None:
        """The next `times` requests to `path` answer returnStatus 0 with `message`."""
        self.system.sandbox(
            "POST",
            "/_sandbox/faults",
            json={
                "error_rate": 1,
                "errors": ["reply"],
                "reply_message": message,
                "paths": [path],
                "limit": times,
            },
        )

    def account(self, **changes: Any) -> None:
        self.system.sandbox("POST", "/_sandbox/state", json={"account": ACCOUNT, **changes})

    def adapter(
        self, credentials: VeesingCredentials | None = None, balance_path: str = BALANCE_PATH
    ) -> VeesingVoice:
        """Our adapter, called directly from the test (not through herald's worker)."""
        return VeesingVoice(
            self.client,
            self.system.sandbox_url,
            credentials or self.credentials(),
            balance_path=balance_path,
        )

    def credentials(self) -> VeesingCredentials:
        env = self.system.env
        return VeesingCredentials(env["HERALD_VEESING_APP_ID"], env["HERALD_VEESING_APP_KEY"])

    # --- observing ---

    def recipient(self, job_id: str, *, until: set[str], timeout_s: float = 10) -> dict[str, Any]:
        """The job's only recipient, once its status is one of `until`."""
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.system.job(job_id)
            (recipient,) = job["recipients"]
            if recipient["status"] in until:
                return dict(recipient)
            if time.monotonic() > deadline:
                raise AssertionError(f"still {recipient}\n{self.system.logs_tail()}")
            time.sleep(0.1)

    def settled(self, job_id: str, timeout_s: float = 15) -> dict[str, Any]:
        (job,) = self.system.wait_settled([job_id], timeout_s=timeout_s)
        (recipient,) = job["recipients"]
        return dict(recipient)

    def stored(self, job_id: str) -> tuple[datetime | None, list[DeliveryEvent]]:
        """From the store: the recipient's not_before and its history."""
        with Session(self.engine) as session:
            (delivery,) = deliveries_of(session, job_id=job_id)
            assert delivery.id is not None
            return delivery.not_before, events_of(session, delivery_ids=[delivery.id])

    def calls_to(self, phone: str) -> list[dict[str, Any]]:
        return [s for s in self.system.sandbox_sends() if s["phone"] == phone]

    def pushed(self, phone: str, timeout_s: float = 10) -> dict[str, str]:
        """The fields of the voice receipt the sandbox pushed about `phone`."""
        deadline = time.monotonic() + timeout_s
        while True:
            done = self.system.sandbox("GET", "/_sandbox/pushes")["done"]
            found = [
                p
                for p in done
                if p["kind"] == "veesing_voice_receipt" and p["fields"]["mobile"] == phone
            ]
            if found:
                (push,) = found
                assert push["result"] == "delivered", push
                return dict(push["fields"])
            assert time.monotonic() < deadline, f"no voice receipt for {phone}"
            time.sleep(0.1)

    def breaker(self) -> tuple[str | None, float]:
        """Why herald's breaker of Veesing voice is open (None: closed), and its seconds left."""
        client = redis.Redis.from_url(self.system.env["HERALD_REDIS_URL"])
        reason = client.get(BREAKER_KEY)
        left_ms = int(client.pttl(BREAKER_KEY))
        return (None if reason is None else reason.decode()), left_ms / 1000


@pytest.fixture(scope="module")
def engine(system: System) -> Iterator[Engine]:
    engine = make_engine(system.env["HERALD_DATABASE_URL"])
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def scene(system: System, engine: Engine) -> Iterator[Scene]:
    before = system.sandbox("GET", "/_sandbox/state")
    scene = Scene(system, engine)
    yield scene
    scene.client.close()
    for job_id in scene.jobs:  # nothing a test left waiting may call the vendor later
        httpx.post(f"{system.api_url}/v1/messages/{job_id}/cancel", timeout=10)
    redis.Redis.from_url(system.env["HERALD_REDIS_URL"]).delete(BREAKER_KEY)
    system.sandbox("POST", "/_sandbox/faults", json={})
    account = before["accounts"][ACCOUNT]
    scene.account(
        status=account["status"],
        ip_blocked=account["ip_blocked"],
        balance=account["balance"],
        undeliverable=before["undeliverable"],
        clock_offset_s=before["clock_offset_s"],
    )


def deferred_for(scene: Scene, job_id: str) -> timedelta:
    """How long the recipient was deferred for: its not_before minus the deferral's time."""
    not_before, events = scene.stored(job_id)
    deferral = [e for e in events if e.to_status == "deferred"][-1]
    assert not_before is not None
    return not_before - deferral.at


def shanghai_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)


# --- 发送成功 and the receipt push ----------------------------------------------------------


def test_a_voice_code_is_called_and_its_receipt_keeps_code_talk_time_and_remark(
    scene: Scene,
) -> None:
    # Given a number that answers; When a voice code is posted
    job_id = scene.call("13502020001")

    # Then the vendor took the call and its status-1 receipt delivered it, details kept
    recipient = scene.settled(job_id)
    receipt = scene.pushed("13502020001")
    (called,) = scene.calls_to("13502020001")
    assert (called["template_id"], called["content"]) == ("724", "1234")
    assert receipt["status"] == "1"
    assert recipient["status"] == "delivered"
    assert recipient["vendor_ref"] == called["ref"] == receipt["taskid"]
    assert recipient["vendor_status"] == receipt["code"] == "1"
    assert recipient["report_detail"] == {
        "talk_time_s": int(receipt["talktime"]),
        "remark": "接收成功",
    }
    assert 5 <= recipient["report_detail"]["talk_time_s"] <= 20
    assert datetime.fromisoformat(recipient["reported_at"]) == shanghai_time(receipt["receivetime"])
    assert recipient["last_error"] is None


def test_a_voice_notice_through_its_notice_template_is_delivered(scene: Scene) -> None:
    # Given the notice template 725; When a notice is posted
    job_id = scene.call(
        "13502020002", template_id="725", variables="您的快递已到驿站", kind="notice"
    )

    # Then the vendor spoke that text through 725 and the receipt delivered it
    recipient = scene.settled(job_id)
    (called,) = scene.calls_to("13502020002")
    assert (called["template_id"], called["content"]) == ("725", "您的快递已到驿站")
    assert recipient["status"] == "delivered"
    assert recipient["report_detail"]["remark"] == "接收成功"


def test_a_receipt_with_status_0_makes_the_recipient_undelivered_keeping_its_details(
    scene: Scene,
) -> None:
    # Given a number that will not answer
    scene.account(undeliverable=["13502020003"])

    # When a voice code is posted to it
    job_id = scene.call("13502020003")

    # Then the vendor took the call, and its status-0 receipt makes it undelivered
    recipient = scene.settled(job_id)
    receipt = scene.pushed("13502020003")
    assert (receipt["status"], receipt["talktime"]) == ("0", "0")
    assert recipient["status"] == "undelivered"
    assert recipient["vendor_status"] == receipt["code"] == "2"
    assert recipient["report_detail"] == {"talk_time_s": 0, "remark": "用户未接听"}
    assert recipient["vendor_ref"] == receipt["taskid"]
    assert len(scene.calls_to("13502020003")) == 1


# --- refusals of the message or of the number: failed, with the vendor's words ------------


@pytest.mark.parametrize(
    ("reply", "phone", "body", "by_fault"),
    [
        ("缺少参数", "13502020011", {}, True),
        ("手机号码格式不正确", "13502020012", {}, True),
        ("模板不存在或者未通过", "13502020013", {"template_id": "999"}, False),
        ("模板id格式不正确", "13502020014", {"template_id": "abc"}, False),
        ("参数错误", "13502020015", {"variables": "明天见", "kind": "notice"}, False),
    ],
)
def test_a_refusal_of_the_call_fails_the_recipient_with_the_vendors_words(
    scene: Scene, reply: str, phone: str, body: dict[str, str], by_fault: bool
) -> None:
    # Given a call the vendor refuses for good: by the sandbox's own check of the template
    # and its variables, or (where no request can provoke it) by its fault
    if by_fault:
        scene.fault(reply)

    # When it is posted
    job_id = scene.call(phone, **body)

    # Then the recipient failed, saying what the vendor said, and no call was made
    recipient = scene.recipient(job_id, until=RESTING)
    assert recipient["status"] == "failed"
    assert recipient["last_error"] == f"veesing: {reply}"
    _, events = scene.stored(job_id)
    assert [e.to_status for e in events] == ["claimed", "sending", "failed"]
    assert scene.calls_to(phone) == []


# --- refusals of the account: the vendor is left alone (breaker) and the call waits -------


@pytest.mark.parametrize(
    ("reply", "phone", "state"),
    [
        ("账号或密码错误", "13502020021", None),
        (LOCKED, "13502020022", {"status": "locked"}),
        ("余额不足", "13502020023", {"balance": 0}),
        ("IP受限", "13502020024", {"ip_blocked": True}),
    ],
)
def test_a_refusal_of_the_account_defers_the_call_for_the_cooldown_and_opens_the_breaker(
    scene: Scene, reply: str, phone: str, state: dict[str, Any] | None
) -> None:
    # Given the vendor refuses the account: by the sandbox account's state, or (wrong
    # credentials, which herald's settings fix for the whole run) by its fault
    if state is None:
        scene.fault(reply)
    else:
        scene.account(**state)

    # When a voice code is posted
    job_id = scene.call(phone)

    # Then it waits out the vendor-blocked cooldown (voice has no other vendor), and the
    # fleet stops calling Veesing voice
    recipient = scene.recipient(job_id, until=RESTING)
    assert recipient["status"] == "deferred"
    assert recipient["last_error"] == f"veesing: {reply} (attempt 1)"
    waited = deferred_for(scene, job_id)
    assert timedelta(seconds=COOLDOWN_S - 1) <= waited <= timedelta(seconds=COOLDOWN_S)
    reason, left_s = scene.breaker()
    assert reason == reply
    assert 0 < left_s <= COOLDOWN_S
    assert scene.calls_to(phone) == []


# --- the vendor's limits -----------------------------------------------------------------


def test_the_vendors_minute_rule_defers_the_call_for_a_minute(scene: Scene) -> None:
    # Given the vendor called the number a moment ago (outside herald, so herald's own
    # minute rule does not know it)
    scene.adapter().send("724", "13502020031", "5678", kind="code")

    # When a voice code to the same number is posted
    job_id = scene.call("13502020031")

    # Then the vendor's minute rule defers it by 60 s, and only the first call was made
    recipient = scene.recipient(job_id, until=RESTING)
    assert recipient["status"] == "deferred"
    assert recipient["last_error"] == "veesing: 相同手机号码一分钟之内只可发送一次"
    waited = deferred_for(scene, job_id)
    assert timedelta(seconds=59) <= waited <= timedelta(seconds=60)
    assert [c["content"] for c in scene.calls_to("13502020031")] == ["5678"]


def use_up_the_number_day(scene: Scene, phone: str) -> int:
    """Call `phone` directly until the sandbox refuses with its per-number daily cap.

    The sandbox clock moves 61 s between calls (the minute rule), starting at the next
    Shanghai noon so that every call falls on one vendor day. Returns how many were made.
    """
    now = datetime.now(SHANGHAI)
    noon = now.replace(hour=12, minute=0, second=0, microsecond=0)
    if noon <= now:
        noon += timedelta(days=1)
    base_s = (noon - now).total_seconds()
    adapter = scene.adapter()
    for made in range(50):
        scene.account(clock_offset_s=base_s + 61 * made)
        try:
            adapter.send("724", phone, "5678", kind="code")
        except QuotaExceeded as exc:
            assert exc.reply == "该号码今日发送次数已达上限"
            return made
    raise AssertionError("the sandbox never applied its per-number daily cap")


def test_the_vendors_per_number_daily_cap_fails_the_call(scene: Scene) -> None:
    # Given the vendor has called the number its daily cap (outside herald)
    made = use_up_the_number_day(scene, "13502020041")

    # When a voice code to it is posted
    job_id = scene.call("13502020041")

    # Then the recipient fails (a voice code tomorrow is worthless), saying why
    recipient = scene.recipient(job_id, until=RESTING)
    assert recipient["status"] == "failed"
    assert recipient["last_error"] == "veesing: 该号码今日发送次数已达上限"
    assert len(scene.calls_to("13502020041")) == made


def test_the_vendors_account_daily_cap_fails_the_call(scene: Scene) -> None:
    # Given the vendor answers the next call 当日发送量已超出最大发送限制
    scene.fault("当日发送量已超出最大发送限制")

    # When a voice code is posted
    job_id = scene.call("13502020051")

    # Then the recipient fails, saying why, and no call was made
    recipient = scene.recipient(job_id, until=RESTING)
    assert recipient["status"] == "failed"
    assert recipient["last_error"] == "veesing: 当日发送量已超出最大发送限制"
    assert scene.calls_to("13502020051") == []


# --- 未知原因: a passing fault, retried ------------------------------------------------------


def test_an_unknown_reason_is_retried_after_a_backoff_and_then_delivered_once(
    scene: Scene,
) -> None:
    # Given the vendor answers the next call 未知原因,请联系客服 (and then recovers)
    scene.fault("未知原因,请联系客服")

    # When a voice code is posted
    job_id = scene.call("13502020061")

    # Then it was deferred once with the vendor's words, retried, and delivered
    recipient = scene.settled(job_id)
    assert recipient["status"] == "delivered"
    assert recipient["last_error"] is None
    _, events = scene.stored(job_id)
    assert [(e.to_status, e.detail) for e in events if e.to_status == "deferred"] == [
        ("deferred", "veesing: 未知原因,请联系客服 (attempt 1)")
    ]
    # (a receipt may overtake the worker's own `submitted`: the history ends either way)
    assert [e.to_status for e in events][:6] == [
        "claimed",
        "sending",
        "deferred",
        "queued",
        "claimed",
        "sending",
    ]
    assert [e.to_status for e in events][6:] in (["submitted", "delivered"], ["delivered"])
    # And the vendor made the call exactly once
    (called,) = scene.calls_to("13502020061")
    assert called["ref"] == recipient["vendor_ref"]


# --- balance (getBalance), through the adapter -----------------------------------------------


@pytest.mark.parametrize("path", [BALANCE_PATH, SAMPLE_BALANCE_PATH])
def test_the_balance_is_the_accounts_remain_point_at_either_documented_address(
    scene: Scene, path: str
) -> None:
    # Given the sandbox voice account holds a known balance
    scene.account(balance=8765)

    # When the adapter asks for it at the table's or the sample's address; Then it is that
    assert scene.adapter(balance_path=path).balance() == Balance(remain_point=8765)


@pytest.mark.parametrize(
    ("provoke", "error", "reply"),
    [
        ("wrong key", VendorBlocked, "账号或密码错误"),
        ("no credentials", MessageRejected, "缺少参数"),
        ("locked", VendorBlocked, LOCKED),
        ("ip blocked", VendorBlocked, "IP受限"),
        ("fault", TransientError, "未知原因,请联系客服"),
    ],
)
def test_each_documented_balance_error_raises_its_class(
    scene: Scene, provoke: str, error: type[NotSent], reply: str
) -> None:
    # Given the sandbox will refuse the balance query for one documented reason
    credentials = scene.credentials()
    if provoke == "wrong key":
        credentials = VeesingCredentials(credentials.app_id, "not-the-key")
    elif provoke == "no credentials":
        credentials = VeesingCredentials("", "")
    elif provoke == "locked":
        scene.account(status="locked")
    elif provoke == "ip blocked":
        scene.account(ip_blocked=True)
    else:
        scene.fault(reply, path=BALANCE_PATH)

    # When the adapter asks for the balance
    with pytest.raises(NotSent) as raised:
        scene.adapter(credentials).balance()

    # Then it raises exactly the class the reply maps to, with the vendor's words
    assert type(raised.value) is error
    assert (raised.value.vendor, raised.value.reply) == ("veesing", reply)
