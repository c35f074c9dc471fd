"""Unit tests: the Veesing SMS adapter against the replies and pushes of its document."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.vendors.fakes import FakeVendor
from worker.clock import SHANGHAI
from worker.delivery_reports import DeliveryReport, InboundReply
from worker.enums import Channel, DeliveryStatus
from worker.errors import (
    AmbiguousOutcome,
    MessageRejected,
    QuotaExceeded,
    RateLimited,
    RecipientRejected,
    ReportFormatError,
    TransientError,
    UnknownReply,
    UnreadableReply,
    VendorBlocked,
    VendorError,
)
from worker.vendors.veesing import (
    VEESING_MESSAGES,
    VeesingCredentials,
    VeesingSms,
    normalise_message,
    parse_push,
    parse_reply,
)

APP_KEY = "WVNA4A0-secret-key"
CREDENTIALS = VeesingCredentials("2RYN7CQHL1M", APP_KEY)
BASE = "https://vip.veesing.com"

# The document's samples, verbatim with their `//` notes (blanks at line ends dropped).
SEND_OK = """{
  "returnStatus": "1 ",     //状态码
  "message": "成功",          //状态提示信息
  "remainPoint": "241",   //本次发送后,账户剩余条数
  "taskId": "3313746",      //下发批次ID(唯一)
  "successCounts": "1"      //成功条数
}"""
SEND_FAILED = """{
  "returnStatus": "0",     //状态码
  "message": "参数错误",   //状态提示信息
  "remainPoint": null,      //本次发送后,账户剩余条数
  "taskId": null,               //下发批次ID(唯一)
  "successCounts": null     //成功条数
}"""
BALANCE_OK = """{
  "returnStatus": "1 ",     //状态码
  "message": "成功",          //状态提示信息
  "remainPoint": "241",   //账户剩余条数
  "taskId": null,
  "successCounts": null
}"""

# Every status-0 message of the send and balance tables, as printed (one ends in U+00A0).
DOCUMENTED: dict[str, tuple[type[VendorError], dict[str, Any]]] = {
    "账号或密码错误": (VendorBlocked, {}),
    "缺少参数": (MessageRejected, {}),
    "参数错误": (MessageRejected, {}),
    "模板不存在或者未通过": (MessageRejected, {}),
    "模板id格式不正确": (MessageRejected, {}),
    "您的账户已被锁定,请联系您的专属客服": (VendorBlocked, {}),
    "余额不足": (VendorBlocked, {}),
    "手机号码格式不正确": (RecipientRejected, {}),
    "该号码今日发送次数已达上限": (QuotaExceeded, {"scope": "number"}),
    "相同手机号码一分钟之内只可发送一次": (RateLimited, {"retry_after_s": 60.0}),
    "当日发送量已超出最大发送限制": (QuotaExceeded, {"scope": "account"}),
    "未知原因,请联系客服\u00a0": (TransientError, {}),
    "IP受限": (VendorBlocked, {}),
}


def wire(sample: str) -> bytes:
    """A document sample as the vendor sends it: JSON without the document's `//` notes."""
    return re.sub(r"//[^\n]*", "", sample).encode("utf-8")


def failure(message: str) -> bytes:
    return wire(SEND_FAILED.replace("参数错误", message))


def test_the_documented_success_reply_with_its_spaced_status_gives_the_task_id() -> None:
    reply = parse_reply(wire(SEND_OK))

    assert (reply.task_id, reply.remain_point, reply.success_counts) == ("3313746", 241, 1)
    assert reply.message == "成功"


def test_the_documented_failure_sample_is_a_message_rejection() -> None:
    with pytest.raises(MessageRejected, match="参数错误"):
        parse_reply(wire(SEND_FAILED))


@pytest.mark.parametrize("message", list(DOCUMENTED))
def test_each_documented_message_raises_its_class(message: str) -> None:
    expected_class, attributes = DOCUMENTED[message]

    with pytest.raises(expected_class) as caught:
        parse_reply(failure(message))

    assert type(caught.value) is expected_class
    for name, value in attributes.items():
        assert getattr(caught.value, name) == value


def test_the_message_table_holds_exactly_the_documented_messages() -> None:
    assert set(VEESING_MESSAGES) == {normalise_message(m) for m in DOCUMENTED}


def test_a_message_with_a_full_width_comma_is_read_as_the_documented_one() -> None:
    with pytest.raises(TransientError):
        parse_reply(failure("未知原因，请联系客服"))


def test_an_undocumented_message_is_an_unknown_reply_kept_verbatim() -> None:
    with pytest.raises(UnknownReply, match="系统维护中"):
        parse_reply(failure("系统维护中"))


@pytest.mark.parametrize(
    "body",
    [b"<html>502 Bad Gateway</html>", b"", b"[1, 2]", b'{"message": "ok"}'],
    ids=["html", "empty", "list", "no returnStatus"],
)
def test_a_body_that_is_not_the_documented_json_is_unreadable_hence_ambiguous(body: bytes) -> None:
    with pytest.raises(UnreadableReply):
        parse_reply(body)


def test_a_status_neither_1_nor_0_is_an_unknown_reply() -> None:
    with pytest.raises(UnknownReply, match="'2'"):
        parse_reply(wire(SEND_OK.replace('"1 "', '"2"')))


def test_send_group_posts_the_documented_form_and_returns_the_batch() -> None:
    vendor = FakeVendor(wire(SEND_OK))
    adapter = VeesingSms(vendor.client(), BASE + "/", CREDENTIALS)
    at = datetime(2018, 8, 21, 6, 0, tzinfo=UTC)

    submission = adapter.send_group(
        ["15080929435", "17608432793"], "【中昱维信】您好", send_time=at
    )

    assert submission.task_id == "3313746"
    assert vendor.last.url == BASE + "/smsApi/group"
    assert vendor.form() == {
        "appId": "2RYN7CQHL1M",
        "appKey": APP_KEY,
        "phone": "15080929435,17608432793",
        "content": "【中昱维信】您好",
        "sendTime": "2018-08-21 14:00:00",
    }


def test_a_success_without_a_task_id_is_ambiguous_not_retryable() -> None:
    vendor = FakeVendor(wire(SEND_OK.replace('"3313746"', "null")))

    with pytest.raises(AmbiguousOutcome):
        VeesingSms(vendor.client(), BASE, CREDENTIALS).send_group(["15080929435"], "【a】b")


def test_balance_reads_the_documented_sample() -> None:
    vendor = FakeVendor(wire(BALANCE_OK))

    balance = VeesingSms(vendor.client(), BASE, CREDENTIALS).balance()

    assert balance.remain_point == 241
    assert vendor.last.url == BASE + "/smsApi/group/getBalance"


def test_the_app_key_is_not_in_the_credentials_repr() -> None:
    assert APP_KEY not in repr(CREDENTIALS)
    assert "2RYN7CQHL1M" in repr(CREDENTIALS)


@pytest.mark.parametrize(
    "reply",
    [
        failure("账号或密码错误"),
        failure("未定义"),
        b"not json",
        httpx.Response(503),
        httpx.Response(403),
    ],
    ids=["blocked", "unknown", "not json", "503", "403"],
)
def test_the_app_key_never_appears_in_an_error(reply: bytes | httpx.Response) -> None:
    vendor = FakeVendor(reply)

    with pytest.raises(VendorError) as caught:
        VeesingSms(vendor.client(), BASE, CREDENTIALS).send_group(["15080929435"], "【a】b")

    assert APP_KEY not in str(caught.value)
    assert APP_KEY not in repr(caught.value)
    assert APP_KEY not in caught.value.reply


def test_the_app_key_never_appears_in_a_transport_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = httpx.Client(transport=httpx.MockTransport(refuse))

    with pytest.raises(TransientError) as caught:
        VeesingSms(client, BASE, CREDENTIALS).balance()

    assert APP_KEY not in str(caught.value)


# Pushes (section 2), the document's examples -----------------------------------------------------


def test_a_receipt_push_is_parsed_with_its_code_and_shanghai_time() -> None:
    push = parse_push(
        {
            "mobile": "1508092****",
            "taskid": "123",
            "status": "1",
            "code": "MA:0001",
            "receivetime": "2019-07-23 17:00:00",
        }
    )

    assert push == DeliveryReport(
        vendor="veesing",
        channel=Channel.SMS,
        vendor_ref="123",
        phone="1508092****",
        status=DeliveryStatus.DELIVERED,
        vendor_status="MA:0001",
        reported_at=datetime(2019, 7, 23, 17, 0, tzinfo=SHANGHAI),
    )


def test_a_receipt_push_with_status_0_is_undelivered() -> None:
    push = parse_push({"mobile": "15080920000", "taskid": "123", "status": "0"})

    assert isinstance(push, DeliveryReport)
    assert push.status is DeliveryStatus.UNDELIVERED
    assert push.reported_at is None


def test_a_reply_push_is_told_apart_by_its_content() -> None:
    push = parse_push(
        {
            "mobile": "1508092****",
            "taskid": "123",
            "content": "收到",
            "receivetime": "2019-07-23 17:00:00",
        }
    )

    assert push == InboundReply(
        vendor="veesing",
        phone="1508092****",
        content="收到",
        vendor_ref="123",
        received_at=datetime(2019, 7, 23, 17, 0, tzinfo=SHANGHAI),
    )


@pytest.mark.parametrize(
    ("form", "named"),
    [
        ({"taskid": "1", "status": "1"}, "mobile"),
        ({"mobile": "15080920000", "status": "1"}, "taskid"),
        ({"mobile": "15080920000", "taskid": "1"}, "status"),
        ({"mobile": "15080920000", "taskid": "1", "status": "2"}, "status"),
        ({"mobile": "1", "taskid": "1", "status": "1", "receivetime": "yesterday"}, "receivetime"),
    ],
)
def test_a_malformed_push_raises_a_format_error_naming_the_field(
    form: dict[str, str], named: str
) -> None:
    with pytest.raises(ReportFormatError, match=named):
        parse_push(form)
