"""Meilian 5C MMS: send replies and errors, batch XML, balance, destructive recv."""

from __future__ import annotations

import base64
import hashlib
import time
from urllib.parse import quote

import pytest

from tests.sandbox.conftest import MakeSandbox, Sandbox
from worker.sandbox.fivec import EncodingError, decode_content

SEND, BATCH, QUERY, RECV = (
    "/api/send/caixin_send.php",
    "/api/send/caixin_send_batch.php",
    "/api/query/",
    "/api/recv/index.php",
)
AUTH = {"apikey": "sandbox-apikey", "username": "sandbox-username", "password": "sandbox-password"}
RECV_AUTH = {
    "apikey": "sandbox-apikey",
    "username": "sandbox-username",
    "password_md5": hashlib.md5(b"sandbox-password").hexdigest().upper(),
}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


CONTENT = f"1_1.txt,{b64('你好'.encode())};1_2.gif,{b64(b'GIF89a')};2_1.txt,{b64(b'bye')}"


def mms(mobile: str = "13811299999,18610310066", **extra: str) -> dict[str, str]:
    return {**AUTH, "mobile": mobile, "title": "标题", "content": CONTENT} | extra


def recv(sandbox: Sandbox, **extra: str) -> bytes:
    response = sandbox.client.post(RECV, data={**RECV_AUTH, **extra})
    assert response.status_code == 200
    return bytes(response.content)


def test_a_send_answers_success_and_the_msgid(sandbox: Sandbox) -> None:
    reply = sandbox.text(SEND, mms())

    assert reply.startswith("success:")
    msgid = reply.removeprefix("success:")
    assert msgid.isdigit()
    assert [
        (s["vendor"], s["product"], s["phone"], s["ref"], s["content"]) for s in sandbox.log()
    ] == [
        ("fivec", "mms", "13811299999", msgid, "你好\nbye"),
        ("fivec", "mms", "18610310066", msgid, "你好\nbye"),
    ]


def test_the_whole_combination_may_also_be_base64(sandbox: Sandbox) -> None:
    assert sandbox.text(SEND, mms(content=b64(CONTENT.encode()))).startswith("success:")


def test_the_samples_misspelt_tittle_is_taken(sandbox: Sandbox) -> None:
    form = mms()
    form["tittle"] = form.pop("title")
    assert sandbox.text(SEND, form).startswith("success:")


@pytest.mark.parametrize(
    ("form", "reply"),
    [
        (mms(apikey=""), "error:Missing apikey"),
        (mms(password=""), "error:Missing password"),
        (mms(title=""), "Error:Missing message title"),
        (mms(mobile=""), "error:Missing recipient"),
        (mms(password="wrong"), "error:APIKEY or password error"),
        (mms(content="1_1.txt,not base64!"), "error:Unrecognized encoding"),
        (mms(content=f"1_1.txt,{b64('你好'.encode('gbk'))}"), "error:Unrecognized encoding"),
        (mms(content="1_2.gif," + "A" * (50 * 1024)), "Error:MMS body too long."),
    ],
)
def test_each_send_error_keeps_its_documented_case(
    sandbox: Sandbox, form: dict[str, str], reply: str
) -> None:
    assert sandbox.text(SEND, form) == reply
    assert sandbox.log() == []


@pytest.mark.parametrize(
    ("state", "reply"),
    [
        ({"status": "disabled"}, "error:Account is blocked"),
        ({"ip_blocked": True}, "error:Unauthorized IP address"),
        ({"balance": 1}, "error:Account balance is insufficient"),
    ],
)
def test_account_errors(sandbox: Sandbox, state: dict[str, object], reply: str) -> None:
    sandbox.state(account="fivec", **state)

    assert sandbox.text(SEND, mms()) == reply


def test_the_file_names_follow_section_2_3() -> None:
    with pytest.raises(EncodingError, match=r"type 2 is not \.txt"):
        decode_content(f"1_2.txt,{b64(b'x')}")
    files = decode_content(f"1_1.txt,{b64(b'a')};1_3.amr,{b64(b'b')};")
    assert [(f.frame, f.kind, f.extension) for f in files] == [(1, 1, "txt"), (1, 3, "amr")]


def batch_xml(*messages: tuple[str, str]) -> str:
    bodies = "".join(
        f"<mmsBodyData><mmsMobile>{m}</mmsMobile>"
        f"<mmsTextContent>{quote(t)}</mmsTextContent></mmsBodyData>"
        for m, t in messages
    )
    return (
        "<?xml version='1.0' encoding='UTF-8' ?><mms>"
        f"<mmsTitle>{quote('彩信主题')}</mmsTitle><mmsPictureType>jpg</mmsPictureType>"
        f"<mmsPictureContent>{b64(b'jpeg')}\n</mmsPictureContent>"
        f"<mmsBody>{bodies}</mmsBody></mms>"
    )


@pytest.mark.parametrize("encode_twice", [False, True])
def test_a_personalised_batch(sandbox: Sandbox, encode_twice: bool) -> None:
    xml = batch_xml(("13811299999", "文本一"), ("18610310066", "文本二"))
    reply = sandbox.text(BATCH, {**AUTH, "xmlData": quote(xml) if encode_twice else xml})

    msgid = reply.removeprefix("success:")
    assert [(s["phone"], s["ref"], s["content"], s["title"]) for s in sandbox.log()] == [
        ("13811299999", msgid, "文本一", "彩信主题"),
        ("18610310066", msgid, "文本二", "彩信主题"),
    ]


def test_a_broken_batch(sandbox: Sandbox) -> None:
    assert sandbox.text(BATCH, {**AUTH, "xmlData": "<mms>"}) == "error:Unrecognized encoding"
    assert sandbox.text(BATCH, {**AUTH, "xmlData": batch_xml()}) == "error:Unrecognized encoding"


def test_balance_query_is_a_number(sandbox: Sandbox) -> None:
    sandbox.text(SEND, mms())

    assert sandbox.client.get(QUERY, params=AUTH).text == "999998"
    assert sandbox.text("/api/query", AUTH) == "999998"
    assert sandbox.text(QUERY, {**AUTH, "apikey": "x"}) == "error:APIKEY or password error"


def test_reports_are_returned_once_then_no_record(sandbox: Sandbox) -> None:
    msgid = sandbox.text(SEND, mms()).removeprefix("success:")

    body = recv(sandbox).decode()

    records = body.split(";")
    assert records[-1] == ""
    parsed = [r.split(",") for r in records[:-1]]
    assert sorted(p[-3] for p in parsed) == ["13811299999", "18610310066"]
    assert all(msgid in p and p[-2] == "DELIVRD" and len(p) in (4, 5, 6) for p in parsed)
    assert recv(sandbox) == b"no record"


def test_reports_wait_for_the_push_delay(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(push_delay_s=0.3)
    sandbox.text(SEND, mms())

    assert recv(sandbox) == b"no record"
    time.sleep(0.35)
    assert recv(sandbox).count(b";") == 2


@pytest.mark.parametrize(
    ("layout", "fields"),
    [("4", ["MSG", "13811299999"]), ("5", ["3456", "MSG", "13811299999"]), ("6", ["3456", "MSG"])],
)
def test_each_layout(make_sandbox: MakeSandbox, layout: str, fields: list[str]) -> None:
    sandbox = make_sandbox(fivec_report_layout=layout)
    msgid = sandbox.text(SEND, mms(mobile="13811299999")).removeprefix("success:")

    (record, tail) = recv(sandbox).decode().split(";")

    values = record.split(",")
    assert tail == ""
    assert len(values) == int(layout)
    assert values[: len(fields)] == [msgid if f == "MSG" else f for f in fields]


def test_recv_refuses_a_wrong_password_md5(sandbox: Sandbox) -> None:
    assert recv(sandbox, password_md5="0" * 32) == b"error:APIKEY or password error"


def test_enqueued_reports_in_bulk_and_gbk(sandbox: Sandbox) -> None:
    sandbox.client.post(
        "/_sandbox/fivec/reports",
        json={
            "encoding": "gbk",
            "reports": [
                {
                    "msgid": "30911175558600",
                    "mobile": "13811299999",
                    "state": "未知",
                    "time": "2013-09-12 09:09:31",
                    "layout": "5",
                    "ext": "",
                }
            ],
            "bulk": {"count": 300, "layouts": ["4", "5", "6"]},
        },
    ).raise_for_status()

    body = recv(sandbox)

    text = body.decode("gbk")
    assert text.startswith(",30911175558600,13811299999,未知,2013-09-12 09:09:31;")
    assert {len(r.split(",")) for r in text.split(";")[:-1]} == {4, 5, 6}
    assert text.count(";") == 301
    assert recv(sandbox) == b"no record"


def test_a_query_by_mobile_and_time_takes_only_those(sandbox: Sandbox) -> None:
    sandbox.client.post(
        "/_sandbox/fivec/reports",
        json={
            "reports": [
                {"msgid": "1", "mobile": "13811299999", "time": "2013-09-12 09:09:31"},
                {"msgid": "2", "mobile": "18610310066", "time": "2013-09-12 09:09:31"},
            ]
        },
    ).raise_for_status()

    at = 1378948171  # 2013-09-12 09:09:31 in Shanghai
    assert recv(sandbox, mobile="18610310066", **{"from": str(at + 1), "to": str(at + 9)}) == (
        b"no record"
    )
    one = recv(sandbox, mobile="18610310066", **{"from": str(at - 5), "to": str(at)})

    assert one.decode().endswith("2,18610310066,DELIVRD,2013-09-12 09:09:31;")
    assert b"13811299999" not in one
    assert b"13811299999" in recv(sandbox)


def test_recv_returns_at_most_the_configured_batch(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(fivec_recv_max=100)
    sandbox.client.post("/_sandbox/fivec/reports", json={"bulk": {"count": 250}})

    sizes = [recv(sandbox).count(b";") for _ in range(3)]

    assert sizes == [100, 100, 50]
    assert recv(sandbox) == b"no record"


def test_recv_requests_are_in_the_request_log_with_their_times(sandbox: Sandbox) -> None:
    recv(sandbox)
    recv(sandbox)

    first, second = (
        r for r in sandbox.client.get("/_sandbox/requests").json() if r["path"] == RECV
    )
    assert first["end"] <= second["start"]
    assert (first["outcome"], first["detail"]) == ("ok", "0 records")
