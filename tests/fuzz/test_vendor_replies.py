"""Property tests of the adapters' reply parsers: whatever a vendor answers, a valid result or
one of herald's typed errors (a `HeraldError`), never any other exception.

Garbage is asserted to be "a HeraldError", not a particular class: how an unreadable reply is
classed (not sent, or ambiguous) is pinned by tests/vendors, not here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.fuzz.conftest import DEEP, fuzz_examples
from tests.fuzz.strategies import CHARSETS, LONG_DIGITS, replies
from worker.delivery_reports import DeliveryReport
from worker.errors import HeraldError, TransientError
from worker.mms import Frame, Media, Mms
from worker.vendors import chuangrui, fivec, veesing
from worker.vendors.chuangrui import Chuangrui, ChuangruiCredentials
from worker.vendors.fivec import Fivec, FivecCredentials
from worker.vendors.transport import RETRY_AFTER_MAX_S, exchange
from worker.vendors.veesing import VeesingCredentials, VeesingSms
from worker.vendors.veesing_mms import VeesingMms
from worker.vendors.veesing_voice import VeesingVoice

CHUANGRUI_REPLIES = (
    "0, 20140821110353234137876543,0,500,0,提交成功",
    "0,123,1,2,3,ok, and more",
    "0,12345",
    "10,賬號不存在",
    "-1,系統異常",
    "99,new code",
)
FIVEC_REPLIES = (
    "success:30911175558600",
    "success:30911175558600\r\n",
    "error:APIKEY or password error",
    "Error:MMS body too long.",
    "发送失败 error:msgid",
    "100",
    "-3.5",
    "no record",
    "30911175558600,13811299999,DELIVRD,2013-09-12 09:09:31;"
    "30911175558598,13811299999,DELIVRD,20 13-09-12 09:09:32;",
    "3456,30911175558600,13811299999,DELIVRD,2013-0 9-12 09:09:31;",
    "3456,13568864638358,2267476,13919214967,DELIVRD,2012-11-15 18:19:52;"
    "5121,13572813669546,3921117,13910704663,UNDELIV,2012-11-15 19:39:12;",
)
VEESING_REPLIES = (
    '{"returnStatus": "1 ", "message": "成功", "remainPoint": "241", "taskId": "3313746",'
    ' "successCounts": "1"}',
    '{"returnStatus": "0", "message": "参数错误", "remainPoint": null, "taskId": null,'
    ' "successCounts": null}',
    '{"returnStatus": "0", "message": "相同手机号码一分钟之内只可发送一次"}',
    '{"returnStatus": "0", "message": "该号码今日发送次数已达上限"}',
    '{"returnStatus": 1, "message": "成功", "remainPoint": 241, "taskId": 55}',
    "<html>502 Bad Gateway</html>",
)


def typed(call: Callable[[], Any]) -> Any:
    """The call's result, or None when it raised a typed error; anything else propagates."""
    try:
        return call()
    except HeraldError as error:
        check_error(error)
        return None


def check_error(error: HeraldError) -> None:
    str(error)  # an error that cannot say what it is would break the logs
    if isinstance(error, TransientError) and error.retry_after_s is not None:
        assert 0 <= error.retry_after_s <= RETRY_AFTER_MAX_S


def finite(value: Decimal) -> bool:
    return value.is_finite()


# Parsers of one reply body ------------------------------------------------------------------------


@given(replies(*CHUANGRUI_REPLIES))
@example(b"0,1," + LONG_DIGITS.encode() + b",1,1,ok")
def test_chuangrui_send_reply(body: bytes) -> None:
    submission = typed(lambda: chuangrui.parse_send_reply(body))
    if submission is not None:
        assert submission.send_id
        assert min(submission.invalid_count, submission.success_count, submission.black_count) >= 0


@given(replies(*CHUANGRUI_REPLIES))
@example(b"0,NaN")
@example(b"0,-Infinity")
def test_chuangrui_balance_reply(body: bytes) -> None:
    balance = typed(lambda: chuangrui.parse_balance_reply(body))
    if balance is not None:
        assert finite(balance.balance)


@given(replies(*FIVEC_REPLIES))
def test_fivec_send_reply(body: bytes) -> None:
    msgid = typed(lambda: fivec.parse_send_reply(body))
    if msgid is not None:
        assert msgid and msgid == msgid.strip()


@given(replies(*FIVEC_REPLIES))
def test_fivec_balance_reply(body: bytes) -> None:
    balance = typed(lambda: fivec.parse_balance_reply(body))
    if balance is not None:
        assert finite(balance)


@given(replies(*VEESING_REPLIES))
@example(b'{"returnStatus": "1", "remainPoint": ' + LONG_DIGITS.encode() + b"}")
def test_veesing_reply(body: bytes) -> None:
    reply = typed(lambda: veesing.parse_reply(body))
    if reply is not None:
        assert reply.task_id is None or reply.task_id.strip() == reply.task_id != ""


def test_a_deeply_nested_veesing_reply_is_a_typed_error() -> None:
    with pytest.raises(HeraldError):
        veesing.parse_reply(b"[" * 100_000 + b"]" * 100_000)


# Whole adapter calls, through a vendor that answers anything --------------------------------------

NETWORK_ERRORS: tuple[type[httpx.HTTPError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.ReadTimeout,
    httpx.WriteTimeout,
    httpx.PoolTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
    httpx.LocalProtocolError,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
    httpx.DecodingError,
    httpx.TooManyRedirects,
)
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)
RETRY_AFTERS = ("1", "0", "-5", "inf", "-inf", "nan", "1e400", "1e300", "99999999999", "abc")


@st.composite
def answers(draw: st.DrawFn, bodies: st.SearchStrategy[bytes]) -> httpx.Response | Exception:
    """What the vendor's side does with a request: a response of any status, charset,
    encoding and Retry-After, or a transport failure."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(NETWORK_ERRORS))("fuzzed")
    status = draw(st.one_of(st.just(200), st.integers(200, 599)))
    headers: dict[str, str] = {}
    charset = draw(st.one_of(st.none(), st.sampled_from(CHARSETS[:-1]), HEADER_TEXT))
    if charset is not None:
        headers["content-type"] = f"text/plain; charset={charset}"
    retry_after = draw(st.one_of(st.none(), st.sampled_from(RETRY_AFTERS), HEADER_TEXT))
    if retry_after is not None:
        headers["retry-after"] = retry_after
    encoding = draw(st.sampled_from([None, None, None, "gzip", "deflate", "identity", "br"]))
    if encoding is not None:
        headers["content-encoding"] = encoding
    # A stream, not `content=`: the body is decoded (gzip, ...) when the client reads it.
    return httpx.Response(status, headers=headers, stream=httpx.ByteStream(draw(bodies)))


class AnsweringVendor:
    """A vendor that gives each request the answer the current example drew."""

    def __init__(self) -> None:
        self.answer: httpx.Response | Exception = httpx.Response(200)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


MMS = Mms("双十一", [Frame(5, "欢迎", Media("gif", b"GIF89a"))])
PHONES = ["13811299999", "18610310066"]
CHUANGRUI = ChuangruiCredentials("wbxxx", "pwd")
FIVEC = FivecCredentials("test", "password", "apikey")
VEESING = VeesingCredentials("app-id", "app-key")
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def fivec_pulled_reports(client: httpx.Client) -> list[DeliveryReport]:
    page = Fivec(client, "http://5c", FIVEC).fetch_report_page()
    return fivec.parse_report_records(page.body, page.charset)


CALLS: dict[str, tuple[tuple[str, ...], Callable[[httpx.Client], object]]] = {
    "chuangrui send": (
        CHUANGRUI_REPLIES,
        lambda c: Chuangrui(c, "http://cr", CHUANGRUI).send(PHONES, "【a】b", "a"),
    ),
    "chuangrui balance": (
        CHUANGRUI_REPLIES,
        lambda c: Chuangrui(c, "http://cr", CHUANGRUI).balance(),
    ),
    "fivec send": (FIVEC_REPLIES, lambda c: Fivec(c, "http://5c", FIVEC).send(PHONES, MMS)),
    "fivec batch": (
        FIVEC_REPLIES,
        lambda c: Fivec(c, "http://5c", FIVEC).send_batch(
            "t", Media("jpg", b"p"), {PHONES[0]: "a"}
        ),
    ),
    "fivec balance": (FIVEC_REPLIES, lambda c: Fivec(c, "http://5c", FIVEC).balance()),
    "fivec report pull": (FIVEC_REPLIES, fivec_pulled_reports),
    "fivec report query": (
        FIVEC_REPLIES,
        lambda c: Fivec(c, "http://5c", FIVEC).query_reports(PHONES, NOW, NOW),
    ),
    "veesing sms send": (
        VEESING_REPLIES,
        lambda c: VeesingSms(c, "http://vs", VEESING).send_group(PHONES, "【a】b"),
    ),
    "veesing sms balance": (
        VEESING_REPLIES,
        lambda c: VeesingSms(c, "http://vs", VEESING).balance(),
    ),
    "veesing mms create": (
        VEESING_REPLIES,
        lambda c: VeesingMms(c, "http://vs", VEESING).create(MMS),
    ),
    "veesing mms send": (
        VEESING_REPLIES,
        lambda c: VeesingMms(c, "http://vs", VEESING).send("55", PHONES),
    ),
    "veesing mms balance": (
        VEESING_REPLIES,
        lambda c: VeesingMms(c, "http://vs", VEESING).balance(),
    ),
    "veesing voice send": (
        VEESING_REPLIES,
        lambda c: VeesingVoice(c, "http://vs", VEESING).send("T1", PHONES[0], "1234", kind="code"),
    ),
    "veesing voice balance": (
        VEESING_REPLIES,
        lambda c: VeesingVoice(c, "http://vs", VEESING).balance(),
    ),
}


@pytest.mark.parametrize("retry_after", RETRY_AFTERS)
def test_any_retry_after_is_a_wait_a_task_can_be_scheduled_for(retry_after: str) -> None:
    answering = AnsweringVendor()
    answering.answer = httpx.Response(503, headers={"retry-after": retry_after})

    with httpx.Client(transport=httpx.MockTransport(answering)) as client:
        try:
            exchange(client, "veesing", "POST", "http://vs/smsApi/group")
        except TransientError as error:
            check_error(error)


ANSWERS = {name: answers(replies(*seeds)) for name, (seeds, _) in CALLS.items()}
ADAPTER_CALL_EXAMPLES = fuzz_examples() if DEEP else 100
"""Fewer in CI than for the parsers alone, which these calls end in."""


@pytest.fixture(scope="module")
def vendor() -> Iterator[tuple[AnsweringVendor, httpx.Client]]:
    answering = AnsweringVendor()
    with httpx.Client(transport=httpx.MockTransport(answering)) as client:
        yield answering, client


@pytest.mark.parametrize("name", sorted(CALLS))
@settings(max_examples=ADAPTER_CALL_EXAMPLES)
@given(data=st.data())
def test_an_adapter_call_gives_its_result_or_a_typed_error(
    vendor: tuple[AnsweringVendor, httpx.Client], name: str, data: st.DataObject
) -> None:
    answering, client = vendor
    answering.answer = data.draw(ANSWERS[name], label="answer")
    typed(lambda: CALLS[name][1](client))
