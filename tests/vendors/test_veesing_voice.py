"""Unit tests: the Veesing voice adapter against the calls, replies and push of its document."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest

from tests.vendors.fakes import FakeVendor
from worker.clock import SHANGHAI
from worker.delivery_reports import DeliveryReport
from worker.enums import Channel, DeliveryStatus
from worker.errors import (
    AmbiguousOutcome,
    InvalidInput,
    MessageRejected,
    QuotaExceeded,
    RateLimited,
    RecipientRejected,
    ReportFormatError,
    TransientError,
    VendorBlocked,
    VendorError,
)
from worker.vendors.veesing import VeesingCredentials
from worker.vendors.veesing_voice import (
    VeesingVoice,
    parse_receipt_push,
    voice_problems,
)

APP_KEY = "WVNA4A0-voice-secret"
CREDENTIALS = VeesingCredentials("2RYN7CQHL1M", APP_KEY)
BASE = "https://cloud.10658.com.cn"

# The document's samples, verbatim with their `//` notes (blanks at line ends dropped).
SEND_OK = """{
"returnStatus": "1 ", //状态码
"message": "成功", //状态提示信息
"remainPoint": "241", //本次发送后,账户剩余条数
"taskId": "3313746", //下发批次ID(唯一)
"successCounts": "1" //成功条数
}"""
FAILED = """{
"returnStatus": "0", //状态码
"message": "参数错误", //状态提示信息
"remainPoint": null, //本次发送后,账户剩余条数
"taskId": null, //下发批次ID(唯一)
"successCounts": null //成功条数
}"""
BALANCE_OK = """{
"returnStatus": "1 ", //状态码
"message": "成功", //状态提示信息
"remainPoint": "241", //账户剩余条数
"taskId": null,
"successCounts": null
}"""

# Every status-0 message of the send table (section 1) and of the balance table (section 3).
SEND_FAILURES: dict[str, tuple[type[VendorError], dict[str, Any]]] = {
    "账号或密码错误": (VendorBlocked, {}),
    "缺少参数": (MessageRejected, {}),
    "模板不存在或者未通过": (MessageRejected, {}),
    "模板id格式不正确": (MessageRejected, {}),
    "您的账户已被锁定,请联系您的专属客服": (VendorBlocked, {}),
    "余额不足": (VendorBlocked, {}),
    "手机号码格式不正确": (RecipientRejected, {}),
    "该号码今日发送次数已达上限": (QuotaExceeded, {"scope": "number"}),
    "相同手机号码一分钟之内只可发送一次": (RateLimited, {"retry_after_s": 60.0}),
    "当日发送量已超出最大发送限制": (QuotaExceeded, {"scope": "account"}),
    "未知原因,请联系客服": (TransientError, {}),
    "参数错误": (MessageRejected, {}),
}
BALANCE_FAILURES: dict[str, type[VendorError]] = {
    "账号或密码错误": VendorBlocked,
    "缺少参数": MessageRejected,
    "您的账户已被锁定,请联系您的专属客服": VendorBlocked,
    "未知原因,请联系客服": TransientError,
    "IP受限": VendorBlocked,
}


def wire(sample: str) -> bytes:
    """A document sample as the vendor sends it: JSON without the document's `//` notes."""
    return re.sub(r"//[^\n]*", "", sample).encode("utf-8")


def failure(message: str) -> bytes:
    return wire(FAILED.replace("参数错误", message))


def test_a_voice_code_posts_the_documented_fields_and_returns_the_task_id() -> None:
    vendor = FakeVendor(wire(SEND_OK))

    submission = VeesingVoice(vendor.client(), BASE, CREDENTIALS).send(
        "724", "15080929435", "1234", kind="code"
    )

    assert (submission.task_id, submission.remain_point, submission.success_counts) == (
        "3313746",
        241,
        1,
    )
    assert vendor.last.url == BASE + "/voiceApi"
    assert vendor.form() == {
        "appId": "2RYN7CQHL1M",
        "appKey": APP_KEY,
        "templateId": "724",
        "phone": "15080929435",
        "variables": "1234",
    }


def test_a_voice_notice_sends_its_text_as_variables() -> None:
    vendor = FakeVendor(wire(SEND_OK))

    VeesingVoice(vendor.client(), BASE, CREDENTIALS).send(
        "725", "15080929435", "您的订单已发货", kind="notice"
    )

    assert vendor.form()["variables"] == "您的订单已发货"


@pytest.mark.parametrize("code", ["12", "12345678", "0042"])
def test_a_voice_code_of_2_to_8_digits_is_valid(code: str) -> None:
    assert voice_problems("code", "15080929435", code) == []


@pytest.mark.parametrize("code", ["1", "123456789", "12a4", "", "１２３４"])
def test_a_voice_code_outside_2_to_8_ascii_digits_is_refused(code: str) -> None:
    problems = voice_problems("code", "15080929435", code)

    assert [p.field for p in problems] == ["variables"]
    assert "2 to 8 digits" in problems[0].rule


def test_a_voice_notice_may_have_50_characters_but_not_51() -> None:
    assert voice_problems("notice", "15080929435", "字" * 50) == []

    problems = voice_problems("notice", "15080929435", "字" * 51)

    assert [p.field for p in problems] == ["variables"]
    assert "at most 50 characters, is 51" in problems[0].rule


def test_a_voice_notice_may_not_carry_emoji() -> None:
    problems = voice_problems("notice", "15080929435", "您好😀")

    assert [p.field for p in problems] == ["variables"]
    assert "emoji" in problems[0].rule


def test_a_voice_call_goes_to_exactly_one_phone_and_nothing_is_sent_otherwise() -> None:
    vendor = FakeVendor(wire(SEND_OK))

    with pytest.raises(InvalidInput, match="exactly one phone"):
        VeesingVoice(vendor.client(), BASE, CREDENTIALS).send(
            "724", "15080929435,17608432793", "1234", kind="code"
        )

    assert vendor.requests == []


@pytest.mark.parametrize("message", list(SEND_FAILURES))
def test_each_documented_send_failure_raises_its_class(message: str) -> None:
    expected, attributes = SEND_FAILURES[message]
    adapter = VeesingVoice(FakeVendor(failure(message)).client(), BASE, CREDENTIALS)

    with pytest.raises(expected) as caught:
        adapter.send("724", "15080929435", "1234", kind="code")

    assert type(caught.value) is expected
    for name, value in attributes.items():
        assert getattr(caught.value, name) == value
    assert APP_KEY not in str(caught.value)


@pytest.mark.parametrize("message", list(BALANCE_FAILURES))
def test_each_documented_balance_failure_raises_its_class(message: str) -> None:
    adapter = VeesingVoice(FakeVendor(failure(message)).client(), BASE, CREDENTIALS)

    with pytest.raises(BALANCE_FAILURES[message]) as caught:
        adapter.balance()

    assert type(caught.value) is BALANCE_FAILURES[message]


def test_a_call_that_succeeds_without_a_task_id_is_ambiguous() -> None:
    vendor = FakeVendor(wire(SEND_OK.replace('"3313746"', "null")))

    with pytest.raises(AmbiguousOutcome):
        VeesingVoice(vendor.client(), BASE, CREDENTIALS).send(
            "724", "15080929435", "1234", kind="code"
        )


def test_balance_uses_the_table_address_unless_told_the_sample_one() -> None:
    vendor = FakeVendor(wire(BALANCE_OK))

    table = VeesingVoice(vendor.client(), BASE, CREDENTIALS).balance()
    VeesingVoice(
        vendor.client(), BASE, CREDENTIALS, balance_path="/voiceApi/group/getBalance"
    ).balance()

    assert table.remain_point == 241
    assert [str(r.url) for r in vendor.requests] == [
        BASE + "/voiceApi/getBalance",
        BASE + "/voiceApi/group/getBalance",
    ]


def test_the_documented_receipt_push_carries_talk_time_and_remark() -> None:
    receipt = parse_receipt_push(
        {
            "mobile": "1508092****",
            "taskid": "123",
            "status": "1",
            "code": "1",
            "receivetime": "2019-07-23 17:00:00",
            "talktime": "12",
            "remark": "接收成功",
        }
    )

    assert receipt == DeliveryReport(
        vendor="veesing",
        channel=Channel.VOICE,
        vendor_ref="123",
        phone="1508092****",
        status=DeliveryStatus.DELIVERED,
        vendor_status="1",
        reported_at=datetime(2019, 7, 23, 17, 0, tzinfo=SHANGHAI),
        detail={"talk_time_s": 12, "remark": "接收成功"},
    )


def test_an_unanswered_call_may_have_no_talk_time() -> None:
    receipt = parse_receipt_push(
        {"mobile": "15080920000", "taskid": "123", "status": "0", "talktime": "", "remark": ""}
    )

    assert (receipt.status, receipt.detail) == (
        DeliveryStatus.UNDELIVERED,
        {"talk_time_s": None, "remark": None},
    )


@pytest.mark.parametrize(
    ("form", "named"),
    [
        ({"mobile": "15080920000", "taskid": "1", "status": "1", "talktime": "12s"}, "talktime"),
        ({"mobile": "15080920000", "taskid": "1", "status": "1", "talktime": "-3"}, "talktime"),
        ({"mobile": "15080920000", "status": "1"}, "taskid"),
        ({"mobile": "15080920000", "taskid": "1", "status": "ok"}, "status"),
        ({"mobile": "15080920000", "taskid": "1", "content": "收到"}, "reply"),
    ],
)
def test_a_malformed_receipt_push_raises_a_format_error(form: dict[str, str], named: str) -> None:
    with pytest.raises(ReportFormatError, match=named):
        parse_receipt_push(form)
