"""Unit tests: every adapter classes a 2xx reply it cannot read at all as ambiguous.

The request was written and answered, so the vendor may have taken it: an HTML page, a cut-off
body, bytes in another encoding or an empty body is `UnreadableReply`, a kind of
`AmbiguousOutcome` (never sent again), not a refusal to retry (docs/design.md, promise 4). A
reply that reads as the vendor's format but is undocumented stays `UnknownReply`.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from tests.vendors.fakes import FakeVendor
from worker.errors import AmbiguousOutcome, NotSent, UnknownReply, UnreadableReply, VendorError
from worker.mms import Frame, Media, Mms
from worker.vendors.chuangrui import Chuangrui, ChuangruiCredentials
from worker.vendors.fivec import Fivec, FivecCredentials
from worker.vendors.veesing import VeesingCredentials, VeesingSms
from worker.vendors.veesing_mms import VeesingMms
from worker.vendors.veesing_voice import VeesingVoice

BASE = "https://vendor.example"
VEESING = VeesingCredentials("app-id", "app-key-secret")
CHUANGRUI = ChuangruiCredentials("name", "pwd-secret")
FIVEC = FivecCredentials("user", "password-secret", "apikey-secret")
PHONES = ["13800138000", "13900139000"]
MMS = Mms("双十一", [Frame(5, "欢迎", Media("gif", b"GIF89a"))])

HTML = b"<html><head><title>200 OK</title></head><body>Welcome to nginx!</body></html>"
VEESING_OK = json.dumps(
    {
        "returnStatus": "1",
        "message": "成功",
        "remainPoint": "241",
        "taskId": "3313746",
        "successCounts": "2",
    },
    ensure_ascii=False,
)
CHUANGRUI_OK = "0,2014082111035323,0,2,0,提交成功"
FIVEC_OK = "success:30911175558600"

Call = Callable[[httpx.Client], object]

SENDS: dict[str, tuple[Call, str]] = {
    "veesing sms": (
        lambda c: VeesingSms(c, BASE, VEESING).send_group(PHONES, "【Herald】您好"),
        VEESING_OK,
    ),
    "veesing mms create": (lambda c: VeesingMms(c, BASE, VEESING).create(MMS), VEESING_OK),
    "veesing mms send": (lambda c: VeesingMms(c, BASE, VEESING).send("55", PHONES), VEESING_OK),
    "veesing voice": (
        lambda c: VeesingVoice(c, BASE, VEESING).send("T1", PHONES[0], "1234", kind="code"),
        VEESING_OK,
    ),
    "chuangrui": (
        lambda c: Chuangrui(c, BASE, CHUANGRUI).send(PHONES, "您好", "Herald"),
        CHUANGRUI_OK,
    ),
    "fivec send": (lambda c: Fivec(c, BASE, FIVEC).send(PHONES, MMS), FIVEC_OK),
    "fivec batch": (
        lambda c: Fivec(c, BASE, FIVEC).send_batch(
            "双十一", Media("gif", b"GIF89a"), dict.fromkeys(PHONES, "欢迎")
        ),
        FIVEC_OK,
    ),
}


def unreadable_bodies(success: str) -> dict[str, bytes]:
    """Ways a success reply can reach us unreadable, shown on the product's own success."""
    wire = success.encode("utf-8")
    return {
        "html": HTML,
        "truncated": wire[: len(wire) // 3],
        "utf-16": success.encode("utf-16"),
        "latin-1 bytes": b"\xe9\xe8\xff\xfe" + wire[:5],
        "empty": b"",
        "blank": b" \r\n",
    }


CASES = [
    pytest.param(call, body, id=f"{product}: {kind}")
    for product, (call, success) in SENDS.items()
    for kind, body in unreadable_bodies(success).items()
]


@pytest.mark.parametrize(("call", "body"), CASES)
def test_a_send_answered_with_an_unreadable_200_is_ambiguous(call: Call, body: bytes) -> None:
    vendor = FakeVendor(body)

    with pytest.raises(UnreadableReply) as caught:
        call(vendor.client())

    assert isinstance(caught.value, AmbiguousOutcome)
    assert not isinstance(caught.value, NotSent)
    assert len(vendor.requests) == 1


@pytest.mark.parametrize(("call", "success"), list(SENDS.values()), ids=list(SENDS))
def test_the_success_the_cases_start_from_is_read(call: Call, success: str) -> None:
    call(FakeVendor(success).client())


@pytest.mark.parametrize(
    ("call", "status"),
    [
        pytest.param(call, status, id=f"{product}: HTTP {status}")
        for product, (call, _) in SENDS.items()
        for status in (500, 502, 504, 520, 524)
    ],
)
def test_a_gateway_error_page_is_ambiguous(call: Call, status: int) -> None:
    vendor = FakeVendor(httpx.Response(status, content=HTML))

    with pytest.raises(AmbiguousOutcome):
        call(vendor.client())


@pytest.mark.parametrize(
    ("call", "body"),
    [
        pytest.param(SENDS["veesing sms"][0], '{"returnStatus": "2"}', id="veesing"),
        pytest.param(SENDS["chuangrui"][0], "99,系統維護", id="chuangrui"),
        pytest.param(SENDS["fivec send"][0], "error:30911175558600", id="fivec"),
    ],
)
def test_a_readable_but_undocumented_reply_stays_a_refusal(call: Call, body: str) -> None:
    with pytest.raises(UnknownReply):
        call(FakeVendor(body).client())


def test_a_veesing_success_whose_counts_cannot_be_read_is_ambiguous() -> None:
    body = VEESING_OK.replace('"241"', '"two hundred"')

    with pytest.raises(UnreadableReply):
        VeesingSms(FakeVendor(body).client(), BASE, VEESING).send_group(PHONES, "【a】b")


def test_a_veesing_reply_behind_a_byte_order_mark_is_still_read() -> None:
    body = b"\xef\xbb\xbf" + VEESING_OK.encode("utf-8")

    submission = VeesingSms(FakeVendor(body).client(), BASE, VEESING).send_group(PHONES, "【a】b")

    assert submission.task_id == "3313746"


def test_a_chuangrui_line_is_read_by_its_code_whatever_the_message_encoding() -> None:
    refused = Chuangrui(FakeVendor("1,含有敏感詞匯".encode("gbk")).client(), BASE, CHUANGRUI)
    taken = Chuangrui(FakeVendor(CHUANGRUI_OK.encode("gbk")).client(), BASE, CHUANGRUI)

    with pytest.raises(VendorError) as caught:
        refused.send(PHONES, "您好", "Herald")
    assert isinstance(caught.value, NotSent)
    assert taken.send(PHONES, "您好", "Herald").send_id == "2014082111035323"


@pytest.mark.parametrize(
    "body", [b"0,\xb4\xed\xce\xf3,0,2,0,ok", b"0,123,0,2", b"0,,0,2,0,ok"], ids=str
)
def test_a_chuangrui_success_whose_send_id_cannot_be_read_is_ambiguous(body: bytes) -> None:
    with pytest.raises(UnreadableReply):
        Chuangrui(FakeVendor(body).client(), BASE, CHUANGRUI).send(PHONES, "您好", "Herald")


def test_a_fivec_success_whose_msgid_is_not_utf8_is_ambiguous() -> None:
    with pytest.raises(UnreadableReply):
        Fivec(FakeVendor(b"success:\xb4\xed").client(), BASE, FIVEC).send(PHONES, MMS)


BALANCES: dict[str, Call] = {
    "veesing sms": lambda c: VeesingSms(c, BASE, VEESING).balance(),
    "veesing mms": lambda c: VeesingMms(c, BASE, VEESING).balance(),
    "veesing voice": lambda c: VeesingVoice(c, BASE, VEESING).balance(),
    "chuangrui": lambda c: Chuangrui(c, BASE, CHUANGRUI).balance(),
    "fivec": lambda c: Fivec(c, BASE, FIVEC).balance(),
}


@pytest.mark.parametrize(
    ("call", "body"),
    [
        pytest.param(call, body, id=f"{product}: {kind}")
        for product, call in BALANCES.items()
        for kind, body in unreadable_bodies("0,100").items()
        if kind != "truncated"  # a bare balance cut short is still a number
    ],
)
def test_an_unreadable_balance_is_a_vendor_error_the_poll_logs(call: Call, body: bytes) -> None:
    """A balance read changes nothing at the vendor, so its class only decides the log line."""
    with pytest.raises(VendorError):
        call(FakeVendor(body).client())
