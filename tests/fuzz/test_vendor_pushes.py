"""Property tests of the adapters' push and report parsers: whatever fields a push carries,
its records or `ReportFormatError` (the one error the push sweep expects, so a bad push is
marked malformed instead of failing every sweep), and for the checks of who sent it, nothing or
`CallbackRejected`."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz.strategies import LONG_DIGITS, charsets, fields, replies, texts
from worker.delivery_reports import AuditResult, DeliveryReport, InboundReply
from worker.errors import CallbackRejected, ReportFormatError
from worker.vendors import chuangrui, fivec, veesing, veesing_mms, veesing_voice

CHUANGRUI_REPORT = {
    "name": "admin",
    "pwd": "12345",
    "sendid": "12345",
    "time": "2013-08-20 20:11:34",
    "mobile": "13900210021",
    "state": "DELIVRD",
}
CHUANGRUI_REPORTS = (
    CHUANGRUI_REPORT,
    {"sendid": "7", "mobile": "13900210021, 13900210022", "state": "ERR:104"},
)
CHUANGRUI_MOS = (
    {
        "name": "admin",
        "pwd": "12345",
        "args": "13800210021#@#content1#@#2013-08-21 21:20:11#@#008123#@@#"
        "13978767656#@#content2#@#2013-08-21 21:20:30#@#008456",
    },
    {"args": "13800210021#@#回复#@#2013-08-21 21:20:11#@#"},
    {"args": "13800210021#@#回复#@#20130821212011"},
)
VEESING_PUSHES = (
    {
        "mobile": "1508092****",
        "taskid": "123",
        "status": "1",
        "code": "MA:0001",
        "receivetime": "2019-07-23 17:00:00",
    },
    {"mobile": "15080920000", "taskid": "123", "status": "0"},
    {
        "mobile": "1508092****",
        "taskid": "123",
        "content": "收到",
        "receivetime": "2019-07-23 17:00",
    },
)
VEESING_AUDITS = (
    {"taskId": "123", "returnStatus": "1", "message": ""},
    {"taskId": "123", "returnStatus": "0", "message": "内容不合规"},
)
VEESING_VOICE_RECEIPTS = (
    {
        "mobile": "15080920000",
        "taskid": "123",
        "status": "1",
        "code": "DELIVRD",
        "receivetime": "2019-07-23 17:00:00",
        "talktime": "12",
        "remark": "接收成功",
    },
    {"mobile": "15080920000", "taskid": "123", "status": "0", "talktime": "", "remark": ""},
)
FIVEC_PAGES = (
    "no record",
    "30911175558600,13811299999,DELIVRD,2013-09-12 09:09:31;"
    "30911175558598,13811299999,DELIVRD,20 13-09-12 09:09:32;",
    "3456,30911175558600,13811299999,DELIVRD,2013-0 9-12 09:09:31;",
    "3456,13568864638358,2267476,13919214967,DELIVRD,2012-11-15 18:19:52;"
    "5121,13572813669546,3921117,13910704663,UNDELIV,2012-11-15 19:39:12;",
    ",30911175558600,13811299999,状态未知,2013-09-12 09:09:31",
)


def parsed(call: Callable[[], Any]) -> Any:
    """The parser's result, or None when it raised `ReportFormatError`."""
    try:
        return call()
    except ReportFormatError as error:
        assert str(error)
        return None


def check_report(report: DeliveryReport) -> None:
    assert report.vendor_ref.strip() == report.vendor_ref != ""
    assert report.phone.strip() == report.phone != ""
    check_time(report.reported_at)


def check_time(moment: datetime | None) -> None:
    if moment is not None:
        assert moment.tzinfo is not None
        moment.astimezone(UTC)


def check_records(records: Sequence[DeliveryReport | InboundReply | AuditResult]) -> None:
    for record in records:
        if isinstance(record, DeliveryReport):
            check_report(record)
        elif isinstance(record, InboundReply):
            assert record.phone
            check_time(record.received_at)
        else:
            assert record.vendor_ref


# Chuangrui ----------------------------------------------------------------------------------------


@given(fields(*CHUANGRUI_REPORTS, extra_keys=("random", "timestamp")))
@example({**CHUANGRUI_REPORT, "time": "0001-01-01 00:00:00"})
def test_chuangrui_report_push(push: dict[str, str]) -> None:
    records = parsed(lambda: chuangrui.parse_report_push(push))
    if records is not None:
        assert records
        check_records(records)
        assert all(r.phone.isascii() and r.phone.isdigit() for r in records)


@given(fields(*CHUANGRUI_MOS), st.integers(0, 8))
def test_chuangrui_mo_push(push: dict[str, str], system_extno_length: int) -> None:
    records = parsed(lambda: chuangrui.parse_mo_push(push, system_extno_length=system_extno_length))
    if records is not None:
        check_records(records)


SECRET = "access-secret-from-chuangrui"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@st.composite
def signed_reports(draw: st.DrawFn) -> dict[str, str]:
    """Reports signed with `SECRET`, so that the checks after the signature's are reached."""
    push = draw(fields(*CHUANGRUI_REPORTS))
    random = draw(texts("r", "8f2a"))
    seconds = draw(st.integers(-(10**12), 10**12)) + int(NOW.timestamp())
    timestamp = draw(
        st.one_of(
            st.just(str(seconds)),
            st.just(str(seconds * 1000)),
            st.just(LONG_DIGITS),
            st.from_regex(r"\A[0-9]{1,400}\Z"),
            texts(str(seconds)),
        )
    )
    digest = hashlib.md5((SECRET + random + timestamp).encode(), usedforsecurity=False)
    name = digest.hexdigest()
    return push | {
        "random": random,
        "timestamp": timestamp,
        "name": draw(st.sampled_from([name, name.upper(), f" {name} "])),
    }


@given(
    st.one_of(fields(*CHUANGRUI_REPORTS, extra_keys=("random", "timestamp")), signed_reports()),
    st.floats(min_value=0, max_value=1e6),
)
@example({"name": "x", "random": "r", "timestamp": LONG_DIGITS}, 300.0)
def test_chuangrui_report_signature(push: dict[str, str], max_age_s: float) -> None:
    try:
        chuangrui.verify_report_signature(push, SECRET, NOW, max_age_s)
    except CallbackRejected as error:
        assert SECRET not in str(error)


def test_a_signed_report_with_a_timestamp_too_long_for_a_float_is_rejected() -> None:
    timestamp = "9" * 400
    name = hashlib.md5((SECRET + "r" + timestamp).encode(), usedforsecurity=False).hexdigest()
    push = {"name": name, "random": "r", "timestamp": timestamp}

    try:
        chuangrui.verify_report_signature(push, SECRET, NOW, 300)
    except CallbackRejected:
        return
    raise AssertionError("accepted")


@given(fields(*CHUANGRUI_REPORTS, *CHUANGRUI_MOS), st.sampled_from([None, "admin"]))
def test_chuangrui_push_login(push: dict[str, str], name: str | None) -> None:
    try:
        chuangrui.verify_push_login(push, name=name, pwd="12345")
    except CallbackRejected as error:
        assert "12345" not in str(error)


# Veesing ------------------------------------------------------------------------------------------


@given(fields(*VEESING_PUSHES))
def test_veesing_sms_push(push: dict[str, str]) -> None:
    record = parsed(lambda: veesing.parse_push(push))
    if record is not None:
        check_records([record])


@given(fields(*VEESING_AUDITS))
def test_veesing_mms_audit_push(push: dict[str, str]) -> None:
    record = parsed(lambda: veesing_mms.parse_audit_push(push))
    if record is not None:
        check_records([record])


@given(fields(*VEESING_PUSHES, *VEESING_AUDITS))
def test_veesing_mms_push(push: dict[str, str]) -> None:
    record = parsed(lambda: veesing_mms.parse_push(push))
    if record is not None:
        check_records([record])


@given(fields(*VEESING_VOICE_RECEIPTS))
@example({**VEESING_VOICE_RECEIPTS[0], "talktime": LONG_DIGITS})
def test_veesing_voice_receipt_push(push: dict[str, str]) -> None:
    record = parsed(lambda: veesing_voice.parse_receipt_push(push))
    if record is not None:
        check_records([record])
        assert record.detail is not None


# 5C report pages ----------------------------------------------------------------------------------


@given(replies(*FIVEC_PAGES), charsets())
@example(b"1,13811299999,DELIVRD,0001-01-01 00:00:00", None)
@example(b"1,1,DELIVRD,2013-09-12 09:09:31 \\ ", "unicode_escape")
@example(b"no record", "undefined")
@example(b"no record", "punycode")
@example(b"no record", "utf\x008")
def test_fivec_report_records(body: bytes, charset: str | None) -> None:
    records = parsed(lambda: fivec.parse_report_records(body, charset))
    if records is not None:
        check_records(records)
        for record in records:
            assert record.vendor_ref.isdigit() and record.phone.isdigit()
            assert record.reported_at is not None


@given(st.binary(max_size=200), charsets())
@example(b"\\ ", "Unicode Escape")
def test_a_report_page_decodes_to_text_or_is_refused(body: bytes, charset: str | None) -> None:
    text = parsed(lambda: fivec.decode_report_body(body, charset))
    assert text is None or isinstance(text, str)


def test_a_time_before_utcs_calendar_is_a_format_error() -> None:
    """0001-01-01 00:00 in Shanghai has no UTC equivalent, and the store keeps UTC."""
    push = {"sendid": "1", "mobile": "1", "state": "DELIVRD", "time": "0001-01-01 00:00:00"}

    try:
        chuangrui.parse_report_push(push)
    except ReportFormatError as error:
        assert "time" in str(error)
    else:
        raise AssertionError("accepted")
