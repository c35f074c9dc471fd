"""Integration: Veesing voice, every documented reply and push, end to end.

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

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from tests.integration.conftest import System
from tests.integration.scene import (
    LOCKED,
    RESTING,
    VEESING_BALANCE_ERRORS,
    VeesingScene,
    assert_retried_once_then_delivered,
    assert_waiting_for_the_vendor,
    shanghai_time,
)
from worker.errors import NotSent
from worker.vendors.veesing import Balance, VeesingCredentials
from worker.vendors.veesing_voice import VeesingVoice

pytestmark = pytest.mark.integration

SEND_PATH = "/voiceApi"
BALANCE_PATH = "/voiceApi/getBalance"
SAMPLE_BALANCE_PATH = "/voiceApi/group/getBalance"
CODE = {"template_id": "724", "variables": "1234", "kind": "code"}


class Scene(VeesingScene):
    """One test's view of the system, for Veesing voice."""

    account_name = "veesing_voice"
    send_path = SEND_PATH
    breaker_keys = ("herald:breaker:veesing:voice",)
    restored_state = ("undeliverable", "clock_offset_s")

    def call(self, phone: str, **body: str) -> str:
        """POST /v1/voice to one phone (the voice code 1234 through template 724 unless told)."""
        return self.track(self.system.submit("/v1/voice", {"to": [phone], **CODE, **body}))

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

    def calls_to(self, phone: str) -> list[dict[str, Any]]:
        """The calls the sandbox made to `phone`."""
        return self.sends_to(phone)

    def receipt(self, phone: str) -> dict[str, str]:
        """The fields of the voice receipt the sandbox pushed about `phone`."""
        return self.pushed("veesing_voice_receipt", "mobile", phone)


@pytest.fixture(autouse=True)
def scene(system: System, engine: Engine) -> Iterator[Scene]:
    yield from Scene.staged(system, engine)


# --- 发送成功 and the receipt push ----------------------------------------------------------


def test_a_voice_code_is_called_and_its_receipt_keeps_code_talk_time_and_remark(
    scene: Scene,
) -> None:
    # Given a number that answers; When a voice code is posted
    job_id = scene.call("13502020001")

    # Then the vendor took the call and its status-1 receipt delivered it, details kept
    recipient = scene.settled(job_id)
    receipt = scene.receipt("13502020001")
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
    receipt = scene.receipt("13502020003")
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
    _, _, events = scene.stored(job_id)
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
    assert_waiting_for_the_vendor(scene, job_id, reply)
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
    waited = scene.deferred_for(job_id)
    assert timedelta(seconds=59) <= waited <= timedelta(seconds=60)
    assert [c["content"] for c in scene.calls_to("13502020031")] == ["5678"]


def use_up_the_number_day(scene: Scene, phone: str) -> int:
    """Call `phone` directly until the sandbox refuses with its per-number daily cap;
    returns how many calls were made."""
    adapter = scene.adapter()
    return scene.use_up_the_number_day(lambda: adapter.send("724", phone, "5678", kind="code"))


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
    deferral = "veesing: 未知原因,请联系客服 (attempt 1)"
    recipient = assert_retried_once_then_delivered(scene, job_id, deferral)
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


@pytest.mark.parametrize(("provoke", "error", "reply"), VEESING_BALANCE_ERRORS)
def test_each_documented_balance_error_raises_its_class(
    scene: Scene, provoke: str, error: type[NotSent], reply: str
) -> None:
    # Given the sandbox will refuse the balance query for one documented reason
    credentials = scene.refuse_balance(provoke, reply, path=BALANCE_PATH)

    # When the adapter asks for the balance
    with pytest.raises(NotSent) as raised:
        scene.adapter(credentials).balance()

    # Then it raises exactly the class the reply maps to, with the vendor's words
    assert type(raised.value) is error
    assert (raised.value.vendor, raised.value.reply) == ("veesing", reply)
