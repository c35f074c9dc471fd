"""Unit tests: the Veesing MMS adapter against the calls, replies and pushes of its document."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime

import httpx
import pytest

from tests.vendors.fakes import FakeVendor
from worker.clock import SHANGHAI
from worker.delivery_reports import AuditResult, DeliveryReport
from worker.enums import Channel, DeliveryStatus
from worker.errors import (
    AmbiguousOutcome,
    InvalidInput,
    MessageRejected,
    ReportFormatError,
    TransientError,
    UnknownReply,
    VendorBlocked,
    VendorError,
)
from worker.mms import Frame, Media, Mms
from worker.vendors.veesing import VeesingCredentials
from worker.vendors.veesing_mms import (
    MMS_BALANCE_PATH,
    VeesingMms,
    parse_audit_push,
    parse_push,
    parse_receipt_push,
)

APP_KEY = "WVNA4A0-mms-secret"
CREDENTIALS = VeesingCredentials("2RYN7CQHL1M", APP_KEY)
BASE = "https://cloud.10658.com.cn"
MMS = Mms("中昱双十一大促", [Frame(5, "中昱维信双十一大促", Media("jpg", b"\xff\xd8jpeg"))])

# The document's samples, verbatim with their `//` notes (blanks at line ends dropped).
CREATE_OK = """{
  "returnStatus": "1 ",		//状态码
  "message": "成功",			//状态提示信息
  "remainPoint": null,
  "taskId": "55",					//彩信ID
  "successCounts": null
}"""
SEND_OK = """{
  "returnStatus": "1 ",		//状态码
  "message": "成功",			//状态提示信息
  "remainPoint": "241",   //本次发送后,账户剩余条数
  "taskId": "3313746",		//下发批次ID(唯一)
  "successCounts": "1"		//成功条数
}"""
FAILED = """{
  "returnStatus": "0",     //状态码
  "message": "参数错误",   //状态提示信息
  "remainPoint": null,
  "taskId": null,
  "successCounts": null
}"""
BALANCE_OK = """{
  "returnStatus": "1 ",		//状态码
  "message": "成功",			//状态提示信息
  "remainPoint": "241",   //账户剩余条数
  "taskId": null,
  "successCounts": null
}"""


def wire(sample: str) -> bytes:
    """A document sample as the vendor sends it: JSON without the document's `//` notes."""
    return re.sub(r"//[^\n]*", "", sample).encode("utf-8")


def failure(message: str) -> bytes:
    return wire(FAILED.replace("参数错误", message))


def test_create_posts_the_title_and_encoded_frames_and_returns_the_mms_id() -> None:
    vendor = FakeVendor(wire(CREATE_OK))

    mms_id = VeesingMms(vendor.client(), BASE, CREDENTIALS).create(MMS)

    assert mms_id == "55"
    assert vendor.last.url == BASE + "/mmsApi/create"
    form = vendor.form()
    assert (form["appId"], form["appKey"], form["title"]) == ("2RYN7CQHL1M", APP_KEY, MMS.title)
    seconds, media, text = form["content"].split(",")
    assert seconds == "5"
    assert media == "jpg|" + base64.b64encode(b"\xff\xd8jpeg").decode()
    assert base64.b64decode(text.removeprefix("txt|")).decode("gbk") == "中昱维信双十一大促"


def test_create_refuses_an_invalid_mms_before_calling_the_vendor() -> None:
    vendor = FakeVendor(wire(CREATE_OK))

    with pytest.raises(InvalidInput, match=r"frames\[0\]\.media\.type"):
        VeesingMms(vendor.client(), BASE, CREDENTIALS).create(
            Mms("t", [Frame(1, media=Media("png", b"p"))])
        )

    assert vendor.requests == []


def test_a_create_that_succeeds_without_an_id_is_an_unknown_reply() -> None:
    vendor = FakeVendor(wire(CREATE_OK.replace('"55"', "null")))

    with pytest.raises(UnknownReply):
        VeesingMms(vendor.client(), BASE, CREDENTIALS).create(MMS)


def test_send_posts_the_mms_id_phones_and_shanghai_send_time() -> None:
    vendor = FakeVendor(wire(SEND_OK))
    at = datetime(2020, 11, 7, 6, 37, 31, tzinfo=UTC)

    submission = VeesingMms(vendor.client(), BASE, CREDENTIALS).send(
        "54", ["15610001090", "15610001091"], send_time=at
    )

    assert (submission.task_id, submission.success_counts, submission.remain_point) == (
        "3313746",
        1,
        241,
    )
    assert vendor.last.url == BASE + "/mmsApi/send"
    assert vendor.form() == {
        "appId": "2RYN7CQHL1M",
        "appKey": APP_KEY,
        "mmsId": "54",
        "phone": "15610001090,15610001091",
        "sendTime": "2020-11-07 14:37:31",
    }


def test_a_send_without_send_time_sends_no_send_time_field() -> None:
    vendor = FakeVendor(wire(SEND_OK))

    VeesingMms(vendor.client(), BASE, CREDENTIALS).send("54", ["15610001090"])

    assert "sendTime" not in vendor.form()


def test_a_send_that_succeeds_without_a_task_id_is_ambiguous_not_retryable() -> None:
    vendor = FakeVendor(wire(SEND_OK.replace('"3313746"', "null")))

    with pytest.raises(AmbiguousOutcome):
        VeesingMms(vendor.client(), BASE, CREDENTIALS).send("54", ["15610001090"])


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("账号或密码错误", VendorBlocked),
        ("缺少参数", MessageRejected),
        ("参数错误", MessageRejected),
        ("您的账户已被锁定,请联系您的专属客服", VendorBlocked),
        ("未知原因,请联系客服\u00a0", TransientError),
        ("IP受限", VendorBlocked),
    ],
)
def test_each_documented_failure_of_create_send_and_balance_raises_its_class(
    message: str, expected: type[VendorError]
) -> None:
    for call in ("create", "send", "balance"):
        adapter = VeesingMms(FakeVendor(failure(message)).client(), BASE, CREDENTIALS)
        with pytest.raises(expected) as caught:
            if call == "create":
                adapter.create(MMS)
            elif call == "send":
                adapter.send("54", ["15610001090"])
            else:
                adapter.balance()
        assert type(caught.value) is expected
        assert APP_KEY not in str(caught.value)


def test_balance_uses_the_table_address_by_default() -> None:
    vendor = FakeVendor(wire(BALANCE_OK))

    balance = VeesingMms(vendor.client(), BASE, CREDENTIALS).balance()

    assert balance.remain_point == 241
    assert MMS_BALANCE_PATH == "/mmsApi/getBalance"
    assert vendor.last.url == BASE + "/mmsApi/getBalance"
    assert vendor.form() == {"appId": "2RYN7CQHL1M", "appKey": APP_KEY}


def test_balance_can_use_the_sample_address_instead() -> None:
    vendor = FakeVendor(wire(BALANCE_OK))
    adapter = VeesingMms(
        vendor.client(), BASE, CREDENTIALS, balance_path="/mmsApi/group/getBalance"
    )

    adapter.balance()

    assert vendor.last.url == BASE + "/mmsApi/group/getBalance"


def test_a_read_timeout_on_send_is_ambiguous() -> None:
    def time_out(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    adapter = VeesingMms(httpx.Client(transport=httpx.MockTransport(time_out)), BASE, CREDENTIALS)

    with pytest.raises(AmbiguousOutcome) as caught:
        adapter.send("54", ["15610001090"])

    assert APP_KEY not in str(caught.value)


# Pushes (sections 3 and 4), the document's examples ----------------------------------------------


def test_an_approved_audit_push_is_parsed() -> None:
    assert parse_audit_push({"taskId": "123", "returnStatus": "1", "message": ""}) == AuditResult(
        vendor="veesing", vendor_ref="123", approved=True, reason=None
    )


def test_a_refused_audit_push_keeps_the_reason() -> None:
    audit = parse_audit_push({"taskId": "123", "returnStatus": "0", "message": "内容不合规"})

    assert audit == AuditResult(
        vendor="veesing", vendor_ref="123", approved=False, reason="内容不合规"
    )


@pytest.mark.parametrize(
    ("form", "named"),
    [
        ({"returnStatus": "1"}, "taskId"),
        ({"taskId": "123"}, "returnStatus"),
        ({"taskId": "123", "returnStatus": "2"}, "returnStatus"),
    ],
)
def test_a_malformed_audit_push_names_the_field(form: dict[str, str], named: str) -> None:
    with pytest.raises(ReportFormatError, match=named):
        parse_audit_push(form)


def test_a_receipt_push_is_parsed_in_shanghai_time() -> None:
    receipt = parse_receipt_push(
        {
            "mobile": "1508092****",
            "taskid": "123",
            "status": "1",
            "receivetime": "2019-07-23 17:00:00",
        }
    )

    assert receipt == DeliveryReport(
        vendor="veesing",
        channel=Channel.MMS,
        vendor_ref="123",
        phone="1508092****",
        status=DeliveryStatus.DELIVERED,
        vendor_status=None,
        reported_at=datetime(2019, 7, 23, 17, 0, tzinfo=SHANGHAI),
    )


@pytest.mark.parametrize(
    ("form", "named"),
    [
        ({"taskid": "123", "status": "1"}, "mobile"),
        ({"mobile": "15080920000", "taskid": "123", "status": "x"}, "status"),
        ({"mobile": "15080920000", "taskid": "123", "status": "1", "content": "收到"}, "reply"),
    ],
)
def test_a_malformed_receipt_push_raises_a_format_error(form: dict[str, str], named: str) -> None:
    with pytest.raises(ReportFormatError, match=named):
        parse_receipt_push(form)


def test_one_callback_can_take_both_pushes() -> None:
    audit = parse_push({"taskId": "123", "returnStatus": "0", "message": "内容不合规"})
    receipt = parse_push({"mobile": "15080920000", "taskid": "123", "status": "0"})

    assert isinstance(audit, AuditResult)
    assert isinstance(receipt, DeliveryReport)
    assert receipt.status is DeliveryStatus.UNDELIVERED
