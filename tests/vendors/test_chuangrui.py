"""Unit tests: the Chuangrui SMS adapter against the calls, replies and pushes of its document."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.vendors.fakes import FakeVendor
from worker.clock import SHANGHAI
from worker.delivery_reports import DeliveryReport, InboundReply
from worker.enums import Channel, DeliveryStatus
from worker.errors import (
    AmbiguousOutcome,
    CallbackRejected,
    InvalidInput,
    MessageRejected,
    RecipientRejected,
    ReportFormatError,
    TransientError,
    UnknownReply,
    UnreadableReply,
    VendorBlocked,
    VendorError,
)
from worker.vendors.chuangrui import (
    CHUANGRUI_CODES,
    Chuangrui,
    ChuangruiCredentials,
    Submission,
    parse_balance_reply,
    parse_mo_push,
    parse_report_push,
    parse_send_reply,
    verify_push_login,
    verify_report_signature,
)

PWD = "0C759A360WWBD5F5E0F5FF9F0597"
CREDENTIALS = ChuangruiCredentials("wbxxx", PWD)
URL = "http://chuangrui.example/send"

# Section 1.7.2, verbatim: note the space after the first comma.
SAMPLE_SUCCESS = "0, 20140821110353234137876543,0,500,0,提交成功"

# Section 1.7.3: every code and its meaning, and the class we give it.
SEND_CODES: dict[str, tuple[str, type[VendorError]]] = {
    "1": ("含有敏感詞匯", MessageRejected),
    "2": ("含有敏感詞匯", MessageRejected),
    "3": ("沒有號碼", RecipientRejected),
    "4": ("包含sql語句", MessageRejected),
    "10": ("賬號不存在", VendorBlocked),
    "11": ("賬號注銷", VendorBlocked),
    "12": ("賬號停用", VendorBlocked),
    "13": ("IP鑒權失敗", VendorBlocked),
    "14": ("格式錯誤", MessageRejected),
    "-1": ("系統異常", TransientError),
}
# Section 2.4.
BALANCE_CODES: dict[str, tuple[str, type[VendorError]]] = {
    "10": ("賬戶不存在", VendorBlocked),
    "11": ("賬號注銷", VendorBlocked),
    "12": ("賬號停用", VendorBlocked),
    "13": ("IP鑒權失敗", VendorBlocked),
}

SECRET = "access-secret-from-chuangrui"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def signed(fields: dict[str, str], *, at: datetime = NOW, random: str = "a8Xk2") -> dict[str, str]:
    """A report push as the vendor signs it (section 3.1)."""
    timestamp = str(int(at.timestamp()))
    digest = hashlib.md5((SECRET + random + timestamp).encode()).hexdigest()
    return fields | {"name": digest, "random": random, "timestamp": timestamp}


# Send ---------------------------------------------------------------------------------------------


def test_the_documented_success_line_with_its_space_gives_the_send_id_and_counts() -> None:
    assert parse_send_reply(SAMPLE_SUCCESS.encode()) == Submission(
        send_id="20140821110353234137876543",
        invalid_count=0,
        success_count=500,
        black_count=0,
        message="提交成功",
    )


@pytest.mark.parametrize("code", list(SEND_CODES))
def test_each_documented_send_code_raises_its_class(code: str) -> None:
    meaning, expected = SEND_CODES[code]

    with pytest.raises(expected) as caught:
        parse_send_reply(f"{code},{meaning}".encode())

    assert type(caught.value) is expected
    assert caught.value.reply == f"{code},{meaning}"


def test_the_code_table_holds_exactly_the_documented_failure_codes() -> None:
    assert set(CHUANGRUI_CODES) == set(SEND_CODES)


def test_a_failure_may_be_the_code_alone() -> None:
    with pytest.raises(VendorBlocked):
        parse_send_reply(b"13\r\n")


@pytest.mark.parametrize("body", [b"99,new code", b"99", b"-7,\xcf\xb5\xcd\xb3"])
def test_an_undocumented_reply_is_an_unknown_reply(body: bytes) -> None:
    with pytest.raises(UnknownReply):
        parse_send_reply(body)


@pytest.mark.parametrize("body", [b"", b"<html>error</html>", b"OK", b"\xff\xfe0\x00"])
def test_a_body_that_is_no_reply_line_is_unreadable_hence_ambiguous(body: bytes) -> None:
    with pytest.raises(UnreadableReply):
        parse_send_reply(body)


@pytest.mark.parametrize(
    "body",
    ["0", "0,,0,500,0,提交成功", "0, 2014082111035323,0,five hundred,0,提交成功"],
    ids=["code only", "no send id", "counts not numbers"],
)
def test_a_success_code_whose_line_cannot_be_read_is_ambiguous_not_retried(body: str) -> None:
    with pytest.raises(AmbiguousOutcome):
        parse_send_reply(body.encode())


def test_a_message_with_commas_stays_whole() -> None:
    assert parse_send_reply(b"0,123,1,2,3,ok, and more").message == "ok, and more"


def test_send_posts_the_documented_form() -> None:
    vendor = FakeVendor(SAMPLE_SUCCESS)
    at = datetime(2012, 8, 1, 0, 20, 23, tzinfo=UTC)

    submission = Chuangrui(vendor.client(), URL, CREDENTIALS).send(
        ["18266878877", "18655555555"], "testmsg", "testsign", stime=at, extno="123"
    )

    assert submission.send_id == "20140821110353234137876543"
    assert vendor.last.method == "POST"
    assert vendor.last.url == URL
    assert vendor.form() == {
        "name": "wbxxx",
        "pwd": PWD,
        "content": "testmsg",
        "mobile": "18266878877,18655555555",
        "sign": "testsign",
        "type": "pt",
        "stime": "2012-08-01 08:20:23",
        "extno": "123",
    }


def test_send_leaves_out_stime_and_extno_when_not_given() -> None:
    vendor = FakeVendor(SAMPLE_SUCCESS)

    Chuangrui(vendor.client(), URL, CREDENTIALS).send(["18266878877"], "短信內容", "簽名")

    assert "stime" not in vendor.form()
    assert "extno" not in vendor.form()


@pytest.mark.parametrize(
    ("mobiles", "content", "sign", "extno", "field"),
    [
        ([], "a", "s", None, "mobile"),
        (["18266878877"], "", "s", None, "content"),
        (["18266878877"], "字" * 501, "s", None, "content"),
        (["18266878877"], "a", " ", None, "sign"),
        (["18266878877"], "a", "s", "12a", "extno"),
    ],
    ids=["no mobile", "empty content", "501 characters", "no sign", "extno not digits"],
)
def test_send_refuses_a_request_that_breaks_section_1_6_before_calling(
    mobiles: list[str], content: str, sign: str, extno: str | None, field: str
) -> None:
    vendor = FakeVendor(SAMPLE_SUCCESS)

    with pytest.raises(InvalidInput) as caught:
        Chuangrui(vendor.client(), URL, CREDENTIALS).send(mobiles, content, sign, extno=extno)

    assert [p.field for p in caught.value.problems] == [field]
    assert vendor.requests == []


def test_the_password_never_appears_in_a_repr_or_an_error() -> None:
    vendor = FakeVendor("10,賬號不存在")

    with pytest.raises(VendorBlocked) as caught:
        Chuangrui(vendor.client(), URL, CREDENTIALS).send(["18266878877"], "a", "s")

    assert PWD not in repr(CREDENTIALS)
    assert PWD not in str(caught.value)


# Balance ------------------------------------------------------------------------------------------


def test_balance_posts_type_balance_and_reads_code_then_balance() -> None:
    vendor = FakeVendor("0,12345")

    balance = Chuangrui(vendor.client(), URL, CREDENTIALS).balance()

    assert balance.balance == Decimal("12345")
    assert vendor.form() == {"name": "wbxxx", "pwd": PWD, "type": "balance"}


@pytest.mark.parametrize("code", list(BALANCE_CODES))
def test_each_documented_balance_code_raises_its_class(code: str) -> None:
    meaning, expected = BALANCE_CODES[code]

    with pytest.raises(expected):
        parse_balance_reply(f"{code},{meaning}".encode())


@pytest.mark.parametrize("body", ["0", "0,lots", "1,含有敏感詞匯", "-1,系統異常"])
def test_a_balance_reply_outside_section_2_is_an_unknown_reply(body: str) -> None:
    with pytest.raises(UnknownReply):
        parse_balance_reply(body.encode())


# Status-report push (section 3) ------------------------------------------------------------------


def test_a_correctly_signed_fresh_report_is_accepted() -> None:
    verify_report_signature(signed({"sendid": "12345"}), SECRET, NOW, 300)


def test_an_upper_case_signature_is_accepted() -> None:
    fields = signed({})
    fields["name"] = fields["name"].upper()

    verify_report_signature(fields, SECRET, NOW, 300)


def test_a_millisecond_timestamp_is_read_as_milliseconds() -> None:
    fields = {"random": "r"}
    timestamp = str(int(NOW.timestamp() * 1000))
    fields |= {
        "timestamp": timestamp,
        "name": hashlib.md5((SECRET + "r" + timestamp).encode()).hexdigest(),
    }

    verify_report_signature(fields, SECRET, NOW, 300)


def test_the_documented_example_with_name_admin_is_rejected() -> None:
    example = {
        "name": "admin",
        "pwd": "12345",
        "sendid": "12345",
        "time": "2013-08-20 20:11:34",
        "mobile": "13900210021",
        "state": "DELIVRD",
    }

    with pytest.raises(CallbackRejected):
        verify_report_signature(example, SECRET, NOW, 300)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"name": "0" * 32}, "does not match"),
        ({"random": "other"}, "does not match"),
        ({"name": ""}, "signature"),
        ({"random": ""}, "random"),
        ({"timestamp": "yesterday"}, "timestamp"),
    ],
)
def test_a_report_with_a_bad_signature_is_rejected(change: dict[str, str], reason: str) -> None:
    with pytest.raises(CallbackRejected, match=reason) as caught:
        verify_report_signature(signed({}) | change, SECRET, NOW, 300)

    assert SECRET not in str(caught.value)
    assert signed({})["name"] not in str(caught.value)


def test_a_report_signed_with_another_secret_is_rejected() -> None:
    with pytest.raises(CallbackRejected, match="does not match"):
        verify_report_signature(signed({}), "another-secret", NOW, 300)


@pytest.mark.parametrize("offset_s", [-301, 301])
def test_a_report_older_or_newer_than_the_window_is_rejected(offset_s: int) -> None:
    fields = signed({}, at=NOW + timedelta(seconds=offset_s))

    with pytest.raises(CallbackRejected, match="limit 300 s"):
        verify_report_signature(fields, SECRET, NOW, 300)


def test_a_report_at_the_edge_of_the_window_is_accepted() -> None:
    verify_report_signature(signed({}, at=NOW - timedelta(seconds=300)), SECRET, NOW, 300)


def test_the_documented_report_example_is_parsed_with_its_state_verbatim() -> None:
    reports = parse_report_push(
        {
            "name": "admin",
            "pwd": "12345",
            "sendid": "12345",
            "time": "2013-08-20 20:11:34",
            "mobile": "13900210021",
            "state": "DELIVRD",
        }
    )

    assert reports == [
        DeliveryReport(
            vendor="chuangrui",
            channel=Channel.SMS,
            vendor_ref="12345",
            phone="13900210021",
            status=DeliveryStatus.DELIVERED,
            vendor_status="DELIVRD",
            reported_at=datetime(2013, 8, 20, 20, 11, 34, tzinfo=SHANGHAI),
        )
    ]


def test_several_mobiles_sharing_one_state_are_all_in_the_report() -> None:
    reports = parse_report_push(
        {"sendid": "7", "mobile": "13900210021, 13900210022", "state": "ERR:104"}
    )

    assert [r.phone for r in reports] == ["13900210021", "13900210022"]
    assert [(r.vendor_ref, r.vendor_status, r.status) for r in reports] == [
        ("7", "ERR:104", DeliveryStatus.UNKNOWN)
    ] * 2
    assert [r.reported_at for r in reports] == [None, None]


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"mobile": "13900210021", "state": "DELIVRD"}, "sendid"),
        ({"sendid": "1", "state": "DELIVRD"}, "mobile"),
        ({"sendid": "1", "mobile": "13900210021"}, "state"),
        ({"sendid": "1", "mobile": "139002x0021", "state": "DELIVRD"}, "mobile"),
        ({"sendid": "1", "mobile": "13900210021,", "state": "DELIVRD"}, "mobile"),
        ({"sendid": "1", "mobile": "13900210021", "state": "DEL IVRD"}, "state"),
        ({"sendid": "1", "mobile": "1", "state": "DELIVRD", "time": "20:11"}, "time"),
    ],
)
def test_a_malformed_report_push_names_what_is_wrong(fields: dict[str, str], named: str) -> None:
    with pytest.raises(ReportFormatError, match=named):
        parse_report_push(fields)


def test_push_login_checks_only_what_was_configured() -> None:
    verify_push_login({"name": "admin", "pwd": "12345"}, name="admin", pwd="12345")
    verify_push_login({"pwd": ""})

    with pytest.raises(CallbackRejected, match="pwd"):
        verify_push_login({"name": "admin", "pwd": "wrong"}, pwd="12345")


# MO push (section 4) ------------------------------------------------------------------------------

MO_ARGS = (
    "13800210021#@#content1#@#2013-08-21 21:20:11#@#008123#@@#"
    "13978767656#@#content2#@#2013-08-21 21:20:30#@#008456"
)


def test_the_documented_mo_example_splits_into_records_and_extension_parts() -> None:
    replies = parse_mo_push(
        {"name": "admin", "pwd": "12345", "args": MO_ARGS}, system_extno_length=3
    )

    assert replies == [
        InboundReply(
            vendor="chuangrui",
            phone="13800210021",
            content="content1",
            vendor_ref="123",
            received_at=datetime(2013, 8, 21, 21, 20, 11, tzinfo=SHANGHAI),
            extras={"system_extno": "008"},
        ),
        InboundReply(
            vendor="chuangrui",
            phone="13978767656",
            content="content2",
            vendor_ref="456",
            received_at=datetime(2013, 8, 21, 21, 20, 30, tzinfo=SHANGHAI),
            extras={"system_extno": "008"},
        ),
    ]


@pytest.mark.parametrize(
    "args",
    ["13800210021#@#回复#@#2013-08-21 21:20:11#@#", "13800210021#@#回复#@#2013-08-21 21:20:11"],
    ids=["empty extension", "extension left out"],
)
def test_an_mo_without_an_extension_has_empty_parts(args: str) -> None:
    (reply,) = parse_mo_push({"args": args}, system_extno_length=3)

    assert (reply.content, reply.extras, reply.vendor_ref) == ("回复", {}, None)


def test_blank_mo_records_are_skipped() -> None:
    replies = parse_mo_push({"args": MO_ARGS + "#@@# #@@#"}, system_extno_length=3)

    assert len(replies) == 2


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ("", "args"),
        ("13800210021#@#content1", "2 fields"),
        ("13800210021#@#a#@#2013-08-21 21:20:11#@#008#@#extra", "5 fields"),
        ("1380021002x#@#a#@#2013-08-21 21:20:11#@#008123", "mobile"),
        ("13800210021#@#a#@#2013-08-21 21:20:11#@#00x", "extension"),
        ("13800210021#@#a#@#21:20#@#008123", "time"),
    ],
)
def test_a_malformed_mo_push_raises_a_format_error(args: str, named: str) -> None:
    with pytest.raises(ReportFormatError, match=named):
        parse_mo_push({"args": args}, system_extno_length=3)
