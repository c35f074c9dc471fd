"""Unit tests: the 5C MMS adapter against the calls, replies and report pages of its document."""

from __future__ import annotations

import base64
import hashlib
import xml.etree.ElementTree as ET
from datetime import datetime
from decimal import Decimal
from urllib.parse import unquote_plus

import pytest

from tests.vendors.fakes import FakeVendor
from worker.clock import SHANGHAI
from worker.delivery_reports import DeliveryReport
from worker.enums import Channel, DeliveryStatus
from worker.errors import (
    AmbiguousOutcome,
    InvalidInput,
    MessageRejected,
    RecipientRejected,
    ReportFormatError,
    UnknownReply,
    UnreadableReply,
    VendorBlocked,
    VendorError,
)
from worker.mms import Frame, Media, Mms
from worker.vendors.fivec import (
    FIVEC_ERRORS,
    Fivec,
    FivecCredentials,
    parse_balance_reply,
    parse_report_records,
    parse_send_reply,
    reason_key,
)

APIKEY = "231d1a3dc627ebd0a7cab5b35c397d3e"
PASSWORD = "test-password-5c"
CREDENTIALS = FivecCredentials("test", PASSWORD, APIKEY)
BASE = "http://m.5c.com.cn"
MMS = Mms("双十一", [Frame(5, "欢迎", Media("gif", b"GIF89a"))])

# Sections 2.2, 3.2 and 4.2: every reply, exactly as printed, and the class we give it.
DOCUMENTED_ERRORS: dict[str, type[VendorError]] = {
    "error:Missing apikey": VendorBlocked,
    "error:Missing password": VendorBlocked,
    "Error:Missing message title": MessageRejected,
    "error:Missing recipient": RecipientRejected,
    "error:Account is blocked": VendorBlocked,
    "error:Unrecognized encoding": MessageRejected,
    "error:APIKEY or password error": VendorBlocked,
    "error:Unauthorized IP address": VendorBlocked,
    "error:Account balance is insufficient": VendorBlocked,
    "Error:MMS body too long.": MessageRejected,
}

# Section 5.1.6, verbatim (the document's own stray spaces inside two dates included).
FOUR_FIELD_SAMPLE = (
    "30911175558600,13811299999,DELIVRD,2013-09-12 09:09:31;"
    "30911175558598,13811299999,DELIVRD,20 13-09-12 09:09:32;"
)
FIVE_FIELD_SAMPLE = "3456,30911175558600,13811299999,DELIVRD,2013-0 9-12 09:09:31;"
# Section 5.1.5's table, its columns joined by the commas the wire uses.
SIX_FIELD_SAMPLE = (
    "3456,13568864638358,2267476,13919214967,DELIVRD,2012-11-15 18:19:52;"
    "5121,13572813669546,3921117,13910704663,UNDELIV,2012-11-15 19:39:12;"
)


def at(year: int, month: int, day: int, hour: int, minute: int, second: int) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=SHANGHAI)


# Send ---------------------------------------------------------------------------------------------


def test_a_success_reply_gives_the_msgid() -> None:
    assert parse_send_reply(b"success:30911175558600") == "30911175558600"


def test_a_success_reply_with_a_line_break_is_read_the_same() -> None:
    assert parse_send_reply(b"success:30911175558600\r\n") == "30911175558600"


@pytest.mark.parametrize("reply", list(DOCUMENTED_ERRORS))
def test_each_documented_error_reply_raises_its_class(reply: str) -> None:
    expected = DOCUMENTED_ERRORS[reply]

    with pytest.raises(expected) as caught:
        parse_send_reply(reply.encode())

    assert type(caught.value) is expected
    assert caught.value.reply == reply


def test_the_error_table_holds_exactly_the_documented_reasons() -> None:
    documented = {reason_key(reply.partition(":")[2]) for reply in DOCUMENTED_ERRORS}

    assert set(FIVEC_ERRORS) == documented


@pytest.mark.parametrize("reply", ["ERROR:account is blocked", "Error:Account is blocked."])
def test_the_case_and_the_full_stop_of_an_error_do_not_matter(reply: str) -> None:
    with pytest.raises(VendorBlocked):
        parse_send_reply(reply.encode())


@pytest.mark.parametrize("reply", ["error:30911175558600", "error:Black keywords is:党中央"])
def test_an_undocumented_reply_is_an_unknown_reply(reply: str) -> None:
    with pytest.raises(UnknownReply):
        parse_send_reply(reply.encode())


@pytest.mark.parametrize("reply", ["OK", "", "<html>", "success"])
def test_a_reply_neither_success_nor_error_is_unreadable_hence_ambiguous(reply: str) -> None:
    with pytest.raises(UnreadableReply):
        parse_send_reply(reply.encode())


def test_a_success_without_a_msgid_is_ambiguous_not_retried() -> None:
    with pytest.raises(AmbiguousOutcome):
        parse_send_reply(b"success:")


def test_send_posts_credentials_url_encoded_title_and_section_2_3_content() -> None:
    vendor = FakeVendor("success:30911175558600")

    msgid = Fivec(vendor.client(), BASE, CREDENTIALS).send(["13811299999", "18610310066"], MMS)

    assert msgid == "30911175558600"
    assert vendor.last.method == "POST"
    assert vendor.last.url == BASE + "/api/send/caixin_send.php"
    form = vendor.form()
    assert (form["apikey"], form["username"], form["password"]) == (APIKEY, "test", PASSWORD)
    assert form["mobile"] == "13811299999,18610310066"
    assert form["title"] == "双十一"  # URL-encoded once, by the form encoding
    text, gif = form["content"].split(";")
    assert text == "1_1.txt," + base64.b64encode("欢迎".encode()).decode()
    assert gif == "1_2.gif," + base64.b64encode(b"GIF89a").decode()


def test_send_refuses_a_title_over_40_characters_before_calling() -> None:
    vendor = FakeVendor("success:1")

    with pytest.raises(InvalidInput, match="title: 1 to 40 characters"):
        Fivec(vendor.client(), BASE, CREDENTIALS).send(["13811299999"], Mms("题" * 41, MMS.frames))

    assert vendor.requests == []


def test_credentials_stay_out_of_repr_and_errors() -> None:
    vendor = FakeVendor("error:APIKEY or password error")

    with pytest.raises(VendorBlocked) as caught:
        Fivec(vendor.client(), BASE, CREDENTIALS).send(["13811299999"], MMS)

    for secret in (APIKEY, PASSWORD):
        assert secret not in repr(CREDENTIALS)
        assert secret not in str(caught.value)


# Personalised batch (section 3) ------------------------------------------------------------------


def test_batch_posts_the_section_3_3_xml_url_encoded_as_a_whole() -> None:
    vendor = FakeVendor("success:30911175558601")
    picture = Media("jpg", b"\xff\xd8picture")

    msgid = Fivec(vendor.client(), BASE, CREDENTIALS).send_batch(
        "彩信主题", picture, {"13811299999": "张三 您好", "18610310066": "李四 您好"}
    )

    assert msgid == "30911175558601"
    assert vendor.last.url == BASE + "/api/send/caixin_send_batch.php"
    document = vendor.form()["xmlData"]  # URL-encoded once, by the form encoding
    assert document.startswith("<?xml version='1.0' encoding='UTF-8' ?><mms>")
    root = ET.fromstring(document)
    assert unquote_plus(root.findtext("mmsTitle") or "") == "彩信主题"
    assert root.findtext("mmsPictureType") == "jpg"
    assert base64.b64decode(root.findtext("mmsPictureContent") or "") == picture.data
    bodies = [
        (data.findtext("mmsMobile"), unquote_plus(data.findtext("mmsTextContent") or ""))
        for data in root.iter("mmsBodyData")
    ]
    assert bodies == [("13811299999", "张三 您好"), ("18610310066", "李四 您好")]


def test_batch_text_with_xml_characters_survives() -> None:
    vendor = FakeVendor("success:1")

    Fivec(vendor.client(), BASE, CREDENTIALS).send_batch(
        "t", Media("png", b"p"), {"13811299999": "a<b & c>d"}
    )

    root = ET.fromstring(vendor.form()["xmlData"])
    assert unquote_plus(root.findtext("mmsBody/mmsBodyData/mmsTextContent") or "") == "a<b & c>d"


@pytest.mark.parametrize(
    ("title", "picture", "texts", "field"),
    [
        ("", Media("jpg", b"p"), {"13811299999": "a"}, "title"),
        ("t", Media("bmp", b"p"), {"13811299999": "a"}, "picture.type"),
        ("t", Media("jpg", b""), {"13811299999": "a"}, "picture.data"),
        ("t", Media("jpg", b"p"), {}, "texts"),
        ("t", Media("jpg", b"p"), {"1381129999x": "a"}, "texts['1381129999x']"),
        ("t", Media("jpg", b"p"), {"13811299999": " "}, "texts['13811299999']"),
    ],
)
def test_batch_refuses_a_broken_rule_before_calling(
    title: str, picture: Media, texts: dict[str, str], field: str
) -> None:
    vendor = FakeVendor("success:1")

    with pytest.raises(InvalidInput) as caught:
        Fivec(vendor.client(), BASE, CREDENTIALS).send_batch(title, picture, texts)

    assert [p.field for p in caught.value.problems] == [field]
    assert vendor.requests == []


@pytest.mark.parametrize("reply", list(DOCUMENTED_ERRORS))
def test_batch_maps_the_documented_errors_too(reply: str) -> None:
    vendor = FakeVendor(reply)

    with pytest.raises(DOCUMENTED_ERRORS[reply]):
        Fivec(vendor.client(), BASE, CREDENTIALS).send_batch(
            "t", Media("gif", b"g"), {"13811299999": "a"}
        )


# Balance (section 4) ------------------------------------------------------------------------------


def test_the_documented_balance_reply_is_a_number() -> None:
    vendor = FakeVendor("100")

    assert Fivec(vendor.client(), BASE, CREDENTIALS).balance() == Decimal(100)
    assert vendor.last.url == BASE + "/api/query/"
    assert vendor.form() == {"apikey": APIKEY, "username": "test", "password": PASSWORD}


@pytest.mark.parametrize(
    "reply", ["error:APIKEY or password error", "error:Unauthorized IP address"]
)
def test_the_documented_balance_errors_block_the_vendor(reply: str) -> None:
    with pytest.raises(VendorBlocked):
        parse_balance_reply(reply.encode())


@pytest.mark.parametrize("reply", ["", "lots", "1,000", "success:1"])
def test_a_balance_that_is_not_a_number_is_an_unknown_reply(reply: str) -> None:
    with pytest.raises(UnknownReply):
        parse_balance_reply(reply.encode())


# Reports (section 5) ------------------------------------------------------------------------------


def test_no_record_is_no_records() -> None:
    assert parse_report_records(b"no record") == []
    assert parse_report_records(b" no record\r\n") == []


DELIVERED = DeliveryStatus.DELIVERED


def report(
    msgid: str, mobile: str, status: DeliveryStatus, word: str, reported_at: datetime, **extras: str
) -> DeliveryReport:
    return DeliveryReport(
        "fivec", Channel.MMS, msgid, mobile, status, word, reported_at, None, extras
    )


def test_the_documented_four_field_sample_is_parsed_despite_its_stray_space() -> None:
    assert parse_report_records(FOUR_FIELD_SAMPLE.encode()) == [
        report("30911175558600", "13811299999", DELIVERED, "DELIVRD", at(2013, 9, 12, 9, 9, 31)),
        report("30911175558598", "13811299999", DELIVERED, "DELIVRD", at(2013, 9, 12, 9, 9, 32)),
    ]


def test_the_documented_five_field_sample_carries_the_extension() -> None:
    assert parse_report_records(FIVE_FIELD_SAMPLE.encode()) == [
        report(
            "30911175558600",
            "13811299999",
            DELIVERED,
            "DELIVRD",
            at(2013, 9, 12, 9, 9, 31),
            extno="3456",
        )
    ]


def test_the_documented_six_field_table_carries_extension_and_serial() -> None:
    assert parse_report_records(SIX_FIELD_SAMPLE.encode()) == [
        report(
            "13568864638358",
            "13919214967",
            DELIVERED,
            "DELIVRD",
            at(2012, 11, 15, 18, 19, 52),
            extno="3456",
            serial="2267476",
        ),
        report(
            "13572813669546",
            "13910704663",
            DeliveryStatus.UNDELIVERED,
            "UNDELIV",
            at(2012, 11, 15, 19, 39, 12),
            extno="5121",
            serial="3921117",
        ),
    ]


def test_an_empty_extension_is_none() -> None:
    (record,) = parse_report_records(b",30911175558600,13811299999,UNDELIV,2013-09-12 09:09:31")

    assert "extno" not in record.extras
    assert record.vendor_status == "UNDELIV"


def test_blank_records_line_breaks_and_spaces_are_tolerated() -> None:
    body = b"\r\n 30911175558600 , 13811299999 ,DELIVRD, 2013-09-12 09:09:31 ;\n;;  ;\r\n"

    (record,) = parse_report_records(body)

    assert (record.vendor_ref, record.phone, record.vendor_status) == (
        "30911175558600",
        "13811299999",
        "DELIVRD",
    )


def test_layouts_may_mix_on_one_page() -> None:
    records = parse_report_records((FOUR_FIELD_SAMPLE + SIX_FIELD_SAMPLE).encode())

    assert [r.extras.get("serial") for r in records] == [None, None, "2267476", "3921117"]


def test_other_status_words_are_kept_verbatim() -> None:
    (record,) = parse_report_records(b"1,13811299999,MK:0005,2013-09-12 09:09:31")

    assert record.vendor_status == "MK:0005"


def test_a_gbk_page_reads_the_same_as_a_utf8_one() -> None:
    page = "3456,30911175558600,13811299999,失败,2013-09-12 09:09:31;"

    from_gbk = parse_report_records(page.encode("gbk"))

    assert from_gbk == parse_report_records(page.encode("utf-8"))
    assert from_gbk[0].vendor_status == "失败"


def test_gbk_bytes_that_are_also_valid_utf8_are_read_as_utf8_first() -> None:
    # "状态未知" in GBK happens to be valid UTF-8: the documented order decides, not a guess.
    page = "1,13811299999,状态未知,2013-09-12 09:09:31".encode("gbk")

    (record,) = parse_report_records(page)

    assert record.vendor_status == page.split(b",")[2].decode("utf-8")


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b"\xff\xfe\xff", "neither UTF-8 nor GBK"),
        (b"", "empty"),
        (b"error:APIKEY or password error", "fields"),
        (b"1,2,3", "3 fields"),
        (b"1,2,3,4,5,6,7", "7 fields"),
        (b"abc,13811299999,DELIVRD,2013-09-12 09:09:31", "msgid"),
        (b"1,1381129999x,DELIVRD,2013-09-12 09:09:31", "mobile"),
        (b"1,13811299999,,2013-09-12 09:09:31", "status"),
        (b"1,13811299999,DELIV RD,2013-09-12 09:09:31", "status"),
        (b"1,13811299999,DELIVRD,2013/09/12 09:09:31", "time"),
        (b"1,13811299999,DELIVRD,2013-13-12 09:09:31", "time"),
        (b"x1,1,13811299999,DELIVRD,2013-09-12 09:09:31", "extension"),
        (b"1,1,x,13811299999,DELIVRD,2013-09-12 09:09:31", "serial"),
    ],
)
def test_anything_else_raises_a_format_error_naming_it(body: bytes, named: str) -> None:
    with pytest.raises(ReportFormatError, match=named):
        parse_report_records(body)


def test_the_error_names_the_record_that_is_wrong() -> None:
    with pytest.raises(ReportFormatError, match="report record 1"):
        parse_report_records(b"1,13811299999,DELIVRD,2013-09-12 09:09:31;oops")


def test_fetch_posts_the_upper_case_password_md5_and_returns_the_raw_page() -> None:
    vendor = FakeVendor(FOUR_FIELD_SAMPLE)

    body = Fivec(vendor.client(), BASE, CREDENTIALS).fetch_report_body()

    assert body == FOUR_FIELD_SAMPLE.encode()
    assert vendor.last.url == BASE + "/api/recv/index.php"
    assert vendor.form() == {
        "username": "test",
        "password_md5": hashlib.md5(PASSWORD.encode()).hexdigest().upper(),
        "apikey": APIKEY,
    }


def test_the_documented_md5_example_is_upper_case_hex() -> None:
    form = FivecCredentials("test", "123456", APIKEY).report_form()

    assert form["password_md5"] == "E10ADC3949BA59ABBE56E057F20F883E"


def test_fetch_raises_the_mapped_class_for_an_error_page() -> None:
    vendor = FakeVendor("error:Unauthorized IP address")

    with pytest.raises(VendorBlocked):
        Fivec(vendor.client(), BASE, CREDENTIALS).fetch_report_body()


def test_query_sends_unix_times_and_numbers_and_parses_the_records() -> None:
    vendor = FakeVendor(SIX_FIELD_SAMPLE)
    start = datetime.fromtimestamp(1402903139, tz=SHANGHAI)
    end = datetime.fromtimestamp(1403017200, tz=SHANGHAI)

    records = Fivec(vendor.client(), BASE, CREDENTIALS).query_reports(
        ["13919214967", "13910704663"], start, end
    )

    assert [r.phone for r in records] == ["13919214967", "13910704663"]
    form = vendor.form()
    assert (form["from"], form["to"]) == ("1402903139", "1403017200")
    assert form["mobile"] == "13919214967,13910704663"
    assert "password" not in form


def test_query_with_no_record_is_empty() -> None:
    vendor = FakeVendor("no record")
    start = datetime.fromtimestamp(1402903139, tz=SHANGHAI)

    assert Fivec(vendor.client(), BASE, CREDENTIALS).query_reports(["1"], start, start) == []
