"""Integration: Veesing SMS, every documented reply and push, end to end.

Each test drives the real system (POST /v1/sms → Celery worker → sandbox → push → API → worker →
store) into one reply of the document's status table, or one of its pushes, and asserts what the
store then says about the recipient (GET /v1/messages/{id}, and the store itself for what the API
does not show: `not_before`, the status history, the vendor a recipient went through).

How each reply is provoked: by the sandbox's own mechanism where it has one (a locked account,
balance 0, an IP block, the minute rule, the per-number daily cap, the undeliverable list, an MO
reply), otherwise by its `reply_message` fault limited to the next send (`limit: 1`). Every test
uses its own phone numbers; the autouse `scene` fixture cancels what a test left waiting, closes
the vendor's breaker, clears faults and puts the sandbox account back as it found it.

Reply or push → how it is provoked → where the recipient ends:

- 发送成功 + receipt status 1 → a plain send → delivered, code DELIVRD kept
- receipt status 0 → the `undeliverable` list → undelivered, the pushed code kept
- 账号或密码错误 → fault → deferred for the 300 s cooldown, breaker open
- 缺少参数, 模板不存在或者未通过, 模板id格式不正确, 手机号码格式不正确 → fault → failed,
  last_error the vendor's words
- 您的账户已被锁定,请联系您的专属客服 → state `locked` → deferred 300 s, breaker open
- 余额不足 → state `balance: 0` → deferred 300 s; by default failed over to Chuangrui
- IP受限 (balance table only; the sandbox answers it on sends too) → state → deferred 300 s
- 该号码今日发送次数已达上限 → the sandbox's own cap → deferred to Shanghai midnight
- 相同手机号码一分钟之内只可发送一次 → the sandbox's own rule → deferred 60 s
- 当日发送量已超出最大发送限制 → fault → deferred to midnight; by default failed over
- 未知原因,请联系客服 → fault, once → deferred, retried, delivered, sent once
- a reply no document lists → fault, twice → failed after HERALD_UNKNOWN_REPLY_ATTEMPTS
- reply (MO) → `/_sandbox/mo` → GET /v1/inbound; reply `TD` → GET /v1/suppressions
- balance: 成功 and each balance error → the adapter's `balance()` → result / error class
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from tests.integration.conftest import System
from tests.integration.scene import (
    LOCKED,
    RESTING,
    SHANGHAI,
    VEESING_BALANCE_ERRORS,
    VeesingScene,
    assert_retried_once_then_delivered,
    assert_waiting_for_the_vendor,
    parse_time,
    shanghai_time,
)
from worker.errors import NotSent
from worker.vendors.veesing import Balance, VeesingCredentials, VeesingSms

pytestmark = pytest.mark.integration

SEND_PATH = "/smsApi/group"
BALANCE_PATH = "/smsApi/group/getBalance"
FAILED_RECEIPT_CODES = {"MA:0001", "MK:0005", "UNDELIV"}


class Scene(VeesingScene):
    """One test's view of the system, for Veesing SMS."""

    account_name = "veesing_sms"
    send_path = SEND_PATH
    breaker_keys = ("herald:breaker:veesing:sms",)
    restored_state = ("undeliverable", "clock_offset_s")

    def sms(self, phone: str, **extra: Any) -> str:
        return self.track(self.system.send_sms([phone], **extra))

    def adapter(self, credentials: VeesingCredentials | None = None) -> VeesingSms:
        """Our adapter, called directly from the test (not through herald's worker)."""
        return VeesingSms(self.client, self.system.sandbox_url, credentials or self.credentials())


@pytest.fixture(autouse=True)
def scene(system: System, engine: Engine) -> Iterator[Scene]:
    yield from Scene.staged(system, engine)


def next_shanghai_midnight(moment: datetime) -> datetime:
    local = moment.astimezone(SHANGHAI) + timedelta(days=1)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


# --- 发送成功 and the receipt push ----------------------------------------------------------


def test_sent_successfully_then_receipt_status_1_makes_the_recipient_delivered_with_its_code(
    scene: Scene,
) -> None:
    # Given a number the sandbox delivers to; When an SMS is posted
    job_id = scene.sms("13501010001")

    # Then the vendor took it (发送成功 with a taskId) and its status-1 receipt delivered it
    recipient = scene.settled(job_id)
    receipt = scene.pushed("veesing_sms_receipt", "mobile", "13501010001")
    (sent,) = scene.sends_to("13501010001")
    assert receipt["status"] == "1"
    assert recipient["status"] == "delivered"
    assert recipient["vendor_ref"] == sent["ref"] == receipt["taskid"]
    assert recipient["vendor_status"] == receipt["code"] == "DELIVRD"
    assert parse_time(recipient["reported_at"]) == shanghai_time(receipt["receivetime"])
    assert recipient["last_error"] is None


def test_a_receipt_with_status_0_makes_the_recipient_undelivered_keeping_the_vendor_code(
    scene: Scene,
) -> None:
    # Given a number the sandbox's carrier will not deliver to
    scene.account(undeliverable=["13501010002"])

    # When an SMS is posted to it
    job_id = scene.sms("13501010002")

    # Then the vendor took it, and its status-0 receipt makes it undelivered with that code
    recipient = scene.settled(job_id)
    receipt = scene.pushed("veesing_sms_receipt", "mobile", "13501010002")
    assert receipt["status"] == "0"
    assert receipt["code"] in FAILED_RECEIPT_CODES
    assert recipient["status"] == "undelivered"
    assert recipient["vendor_status"] == receipt["code"]
    assert recipient["vendor_ref"] == receipt["taskid"]
    assert parse_time(recipient["reported_at"]) == shanghai_time(receipt["receivetime"])
    assert len(scene.sends_to("13501010002")) == 1


# --- refusals of the message or of the number: failed, with the vendor's words ------------


@pytest.mark.parametrize(
    ("reply", "phone"),
    [
        ("缺少参数", "13501010011"),
        ("模板不存在或者未通过", "13501010012"),
        ("模板id格式不正确", "13501010013"),
        ("手机号码格式不正确", "13501010014"),
    ],
)
def test_a_refusal_of_the_message_or_the_number_fails_the_recipient_with_the_vendors_words(
    scene: Scene, reply: str, phone: str
) -> None:
    # Given the vendor will refuse the next send with one of the document's permanent replies
    scene.fault(reply)

    # When an SMS is posted
    job_id = scene.sms(phone)

    # Then the recipient failed, saying what the vendor said, and nothing was sent or retried
    recipient = scene.recipient(job_id, until=RESTING)
    assert recipient["status"] == "failed"
    assert recipient["last_error"] == f"veesing: {reply}"
    assert recipient["vendor_ref"] is None
    _, _, events = scene.stored(job_id)
    assert [e.to_status for e in events] == ["claimed", "sending", "failed"]
    assert scene.sends_to(phone) == []


def test_a_group_refused_for_a_bad_number_does_not_fail_the_numbers_sent_with_it(
    scene: Scene,
) -> None:
    # Given the vendor refuses the next group send 手机号码格式不正确; the reply does not say
    # which number, and a Veesing group send is all-or-nothing, so nothing was sent
    scene.fault("手机号码格式不正确")

    # When one SMS to two numbers is posted
    job_id = scene.track(scene.system.send_sms(["13501010015", "13501010016"]))

    # Then neither number is condemned for a refusal that need not be its own: sent on
    # their own, both are delivered, once each
    (job,) = scene.system.wait_settled([job_id], timeout_s=15)
    assert {r["phone"]: r["status"] for r in job["recipients"]} == {
        "13501010015": "delivered",
        "13501010016": "delivered",
    }
    assert len(scene.sends_to("13501010015")) == len(scene.sends_to("13501010016")) == 1


# --- refusals of the account: the vendor is left alone (breaker) and the job waits --------


def test_wrong_credentials_defer_the_recipient_for_the_cooldown_and_open_the_breaker(
    scene: Scene,
) -> None:
    # Given the vendor answers the next send 账号或密码错误
    scene.fault("账号或密码错误")

    # When an SMS that may not fail over is posted
    job_id = scene.sms("13501010021", allow_failover=False)

    # Then it waits out the vendor-blocked cooldown and the fleet stops calling Veesing SMS
    assert_waiting_for_the_vendor(scene, job_id, "账号或密码错误")
    assert scene.sends_to("13501010021") == []


def test_a_locked_account_defers_the_recipient_and_no_further_job_calls_the_vendor(
    scene: Scene,
) -> None:
    # Given the sandbox account is locked
    scene.account(status="locked")

    # When an SMS that may not fail over is posted
    job_id = scene.sms("13501010031", allow_failover=False)

    # Then it waits out the cooldown with the vendor's words, and the breaker is open
    assert_waiting_for_the_vendor(scene, job_id, LOCKED)

    # And a second job does not call the vendor at all while the breaker is open
    start = time.time()
    second = scene.sms("13501010032", allow_failover=False)
    waiting = scene.recipient(second, until=RESTING)
    assert waiting["status"] == "deferred"
    assert waiting["last_error"] == f"veesing is refusing the account ({LOCKED}); waiting for it"
    assert scene.requests_since(start) == []


def test_no_balance_defers_the_recipient_for_the_cooldown(scene: Scene) -> None:
    # Given the sandbox account has no balance left
    scene.account(balance=0)

    # When an SMS that may not fail over is posted
    job_id = scene.sms("13501010041", allow_failover=False)

    # Then it waits out the cooldown saying 余额不足, and nothing was sent
    assert_waiting_for_the_vendor(scene, job_id, "余额不足")
    assert scene.sends_to("13501010041") == []


def test_no_balance_fails_the_recipient_over_to_chuangrui_where_it_is_delivered(
    scene: Scene,
) -> None:
    # Given the sandbox Veesing SMS account has no balance left
    scene.account(balance=0)

    # When an SMS is posted with the default routing (failover allowed)
    job_id = scene.sms("13501010042")

    # Then Veesing refused it, it went through Chuangrui instead, and was delivered there
    recipient = scene.settled(job_id)
    vendor, _, events = scene.stored(job_id)
    assert recipient["status"] == "delivered"
    assert vendor == "chuangrui"
    assert "failed over to chuangrui: veesing: 余额不足" in [e.detail for e in events]
    assert [s["vendor"] for s in scene.sends_to("13501010042")] == ["chuangrui"]
    assert scene.breaker()[0] == "余额不足"


def test_an_ip_block_on_send_defers_the_recipient_for_the_cooldown(scene: Scene) -> None:
    # Given the sandbox blocks herald's IP (the document lists IP受限 for balance queries;
    # the sandbox answers it on sends too, and the adapter must classify it the same)
    scene.account(ip_blocked=True)

    # When an SMS that may not fail over is posted
    job_id = scene.sms("13501010051", allow_failover=False)

    # Then it waits out the vendor-blocked cooldown
    assert_waiting_for_the_vendor(scene, job_id, "IP受限")


# --- the vendor's limits: deferred, never failed -------------------------------------------


def test_the_vendors_minute_rule_defers_the_recipient_for_a_minute(scene: Scene) -> None:
    # Given the vendor sent to the number a moment ago (outside herald, so herald's own
    # minute rule does not know it)
    scene.adapter().send_group(["13501010061"], "【Herald】先到的一条")

    # When an SMS to the same number is posted
    job_id = scene.sms("13501010061")

    # Then the vendor's minute rule defers it by 60 s, and the vendor sent only the first
    recipient = scene.recipient(job_id, until=RESTING)
    assert recipient["status"] == "deferred"
    assert recipient["last_error"] == "veesing: 相同手机号码一分钟之内只可发送一次"
    waited = scene.deferred_for(job_id)
    assert timedelta(seconds=59) <= waited <= timedelta(seconds=60)
    assert [s["content"] for s in scene.sends_to("13501010061")] == ["【Herald】先到的一条"]


def use_up_the_number_day(scene: Scene, phone: str) -> int:
    """Send to `phone` directly until the sandbox refuses with its per-number daily cap;
    returns how many were sent."""
    adapter = scene.adapter()
    return scene.use_up_the_number_day(lambda: adapter.send_group([phone], "【Herald】计数"))


def test_the_vendors_per_number_daily_cap_defers_the_recipient_to_the_next_vendor_day(
    scene: Scene,
) -> None:
    # Given the vendor has sent the number its daily cap (outside herald)
    sent = use_up_the_number_day(scene, "13501010071")

    # When an SMS to it is posted with the cap policy "defer"
    job_id = scene.sms("13501010071", on_daily_cap="defer")

    # Then it waits for Shanghai midnight, saying why, and the vendor sent nothing more
    recipient = scene.recipient(job_id, until=RESTING)
    assert recipient["status"] == "deferred"
    assert recipient["last_error"] == "veesing: 该号码今日发送次数已达上限"
    _, not_before, events = scene.stored(job_id)
    deferral = [e for e in events if e.to_status == "deferred"][-1]
    assert not_before == next_shanghai_midnight(deferral.at)
    assert len(scene.sends_to("13501010071")) == sent


def test_the_vendors_account_daily_cap_defers_the_recipient_to_the_next_vendor_day(
    scene: Scene,
) -> None:
    # Given the vendor answers the next send 当日发送量已超出最大发送限制
    scene.fault("当日发送量已超出最大发送限制")

    # When an SMS is posted with the cap policy "defer"
    job_id = scene.sms("13501010081", on_daily_cap="defer")

    # Then it waits for Shanghai midnight, saying why
    recipient = scene.recipient(job_id, until=RESTING)
    assert recipient["status"] == "deferred"
    assert recipient["last_error"] == "veesing: 当日发送量已超出最大发送限制"
    _, not_before, events = scene.stored(job_id)
    deferral = [e for e in events if e.to_status == "deferred"][-1]
    assert not_before == next_shanghai_midnight(deferral.at)
    assert scene.sends_to("13501010081") == []


def test_the_vendors_account_daily_cap_fails_over_to_chuangrui_by_default(scene: Scene) -> None:
    # Given the vendor answers the next send 当日发送量已超出最大发送限制
    scene.fault("当日发送量已超出最大发送限制")

    # When an SMS is posted with the default cap policy (failover)
    job_id = scene.sms("13501010082")

    # Then it goes through Chuangrui and is delivered there
    recipient = scene.settled(job_id)
    vendor, _, events = scene.stored(job_id)
    assert recipient["status"] == "delivered"
    assert vendor == "chuangrui"
    assert "failed over to chuangrui: veesing: 当日发送量已超出最大发送限制" in [
        e.detail for e in events
    ]
    assert [s["vendor"] for s in scene.sends_to("13501010082")] == ["chuangrui"]


# --- 未知原因: a passing fault, retried ------------------------------------------------------


def test_an_unknown_reason_is_retried_after_a_backoff_and_then_delivered_once(
    scene: Scene,
) -> None:
    # Given the vendor answers the next send 未知原因,请联系客服 (and then recovers)
    scene.fault("未知原因,请联系客服")

    # When an SMS is posted
    job_id = scene.sms("13501010091")

    # Then it was deferred once with the vendor's words, retried, and delivered
    deferral = "veesing: 未知原因,请联系客服 (attempt 1)"
    recipient = assert_retried_once_then_delivered(scene, job_id, deferral)
    # And the vendor sent it exactly once
    (sent,) = scene.sends_to("13501010091")
    assert sent["ref"] == recipient["vendor_ref"]


def test_a_reply_no_document_lists_is_retried_on_the_small_budget_then_failed(
    scene: Scene,
) -> None:
    # Given the vendor answers the next two sends with a message no document lists
    scene.fault("系统维护中", times=2)

    # When an SMS is posted
    job_id = scene.sms("13501010092")

    # Then it is retried once (HERALD_UNKNOWN_REPLY_ATTEMPTS = 2) and then failed verbatim
    recipient = scene.settled(job_id)
    assert recipient["status"] == "failed"
    assert recipient["last_error"] == (
        "veesing: returnStatus 0: '系统维护中' (gave up after 2 attempts)"
    )
    assert scene.sends_to("13501010092") == []


# --- replies (MO) ----------------------------------------------------------------------------


def test_a_reply_push_is_stored_as_an_inbound_message_of_the_batch_it_answers(
    scene: Scene,
) -> None:
    # Given an SMS delivered to a number
    recipient = scene.settled(scene.sms("13501010101"))

    # When its owner replies
    pushed = scene.system.sandbox(
        "POST",
        "/_sandbox/mo",
        json={"vendor": "veesing", "phone": "13501010101", "content": "收到"},
    )

    # Then the reply is kept as inbound, naming the batch it answers, and suppresses nothing
    (message,) = scene.inbound("13501010101")
    assert pushed["taskid"] == recipient["vendor_ref"]
    assert (message["vendor"], message["phone"], message["content"], message["vendor_ref"]) == (
        "veesing",
        "13501010101",
        "收到",
        recipient["vendor_ref"],
    )
    assert parse_time(message["received_at"]) == shanghai_time(pushed["receivetime"])
    assert "13501010101" not in scene.suppressed()


def test_an_opt_out_reply_suppresses_the_number_and_its_next_marketing_sms_fails(
    scene: Scene,
) -> None:
    # Given a number whose owner has not opted out
    assert "13501010111" not in scene.suppressed()

    # When its owner replies TD
    scene.system.sandbox(
        "POST", "/_sandbox/mo", json={"vendor": "veesing", "phone": "13501010111", "content": "TD"}
    )

    # Then the reply is kept and the number is suppressed
    (message,) = scene.inbound("13501010111")
    assert message["content"] == "TD"
    scene.wait_suppressed("13501010111")
    assert scene.suppressed()["13501010111"] == "replied 'TD' via veesing"

    # And a marketing SMS to it fails without reaching the vendor
    recipient = scene.settled(scene.sms("13501010111"))
    assert recipient["status"] == "failed"
    assert recipient["last_error"] == "suppressed: replied 'TD' via veesing"
    assert scene.sends_to("13501010111") == []


# --- balance (getBalance), through the adapter -----------------------------------------------


def test_the_balance_is_the_accounts_remain_point(scene: Scene) -> None:
    # Given the sandbox account holds a known balance
    scene.account(balance=4321)

    # When the adapter asks for the balance; Then it is that number
    assert scene.adapter().balance() == Balance(remain_point=4321)


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
