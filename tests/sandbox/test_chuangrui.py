"""Chuangrui SMS: one-line CSV replies, every code, signed reports, MO pushes."""

from __future__ import annotations

import hashlib

import pytest

from tests.sandbox.conftest import MakeSandbox, Sandbox

URL = "/chuangrui/sms"
AUTH = {"name": "sandbox-name", "pwd": "sandbox-pwd"}


def sms(mobile: str = "18266878877,18655555555", **extra: str) -> dict[str, str]:
    return {
        **AUTH,
        "content": "短信驗證碼為:1234",
        "mobile": mobile,
        "sign": "創瑞",
        "type": "pt",
    } | extra


def test_an_accepted_send_answers_the_documented_line(sandbox: Sandbox) -> None:
    reply = sandbox.text(URL, sms())

    code, send_id, invalid, success, black, message = reply.split(",")
    assert (code, invalid, success, black, message) == ("0", "0", "2", "0", "提交成功")
    assert send_id.startswith(" ") and len(send_id.strip()) == 26 and send_id.strip().isdigit()
    assert [(s["vendor"], s["phone"], s["ref"]) for s in sandbox.log()] == [
        ("chuangrui", "18266878877", send_id.strip()),
        ("chuangrui", "18655555555", send_id.strip()),
    ]


def test_query_string_sends_like_the_documents_example(sandbox: Sandbox) -> None:
    response = sandbox.client.get(URL, params=sms(mobile="18266878877", stime="2012-08-01 8:20:23"))

    assert response.text.startswith("0, ")


def test_invalid_and_blacklisted_numbers_are_counted_not_sent(sandbox: Sandbox) -> None:
    sandbox.state(blacklist=["18655555555"])

    reply = sandbox.text(URL, sms(mobile="18266878877,18655555555,123"))

    assert reply.split(",")[2:] == ["1", "1", "1", "提交成功"]
    assert [s["phone"] for s in sandbox.log()] == ["18266878877"]


@pytest.mark.parametrize(
    ("form", "reply"),
    [
        (sms(content="含敏感词的內容"), "1,含有敏感詞匯"),
        (sms(sign="敏感词"), "2,含有敏感詞匯"),
        (sms(mobile=""), "3,沒有號碼"),
        (sms(content="x; DROP TABLE users"), "4,包含sql語句"),
        (sms(name="nobody"), "10,賬號不存在"),
        (sms(pwd="wrong"), "10,賬號不存在"),
        (sms(type="xx"), "14,格式錯誤"),
        (sms(sign=""), "14,格式錯誤"),
        (sms(content="長" * 501), "14,格式錯誤"),
        (sms(extno="12a"), "14,格式錯誤"),
        (sms(stime="tomorrow"), "14,格式錯誤"),
    ],
)
def test_each_send_code(sandbox: Sandbox, form: dict[str, str], reply: str) -> None:
    assert sandbox.text(URL, form) == reply
    assert sandbox.log() == []


@pytest.mark.parametrize(
    ("state", "send", "balance"),
    [
        ({"status": "cancelled"}, "11,賬號注銷", "11,賬號注銷"),
        ({"status": "disabled"}, "12,賬號停用", "12,賬號停用"),
        ({"ip_blocked": True}, "13,IP鑒權失敗", "13,IP鑒權失敗"),
    ],
)
def test_account_states(
    sandbox: Sandbox, state: dict[str, object], send: str, balance: str
) -> None:
    sandbox.state(account="chuangrui", **state)

    assert sandbox.text(URL, sms()) == send
    assert sandbox.text(URL, {**AUTH, "type": "balance"}) == balance


def test_balance(sandbox: Sandbox) -> None:
    sandbox.text(URL, sms())

    assert sandbox.text(URL, {**AUTH, "type": "balance"}) == "0,999998"
    assert sandbox.text("/chuangrui/balance", {**AUTH, "type": "balance"}) == "0,999998"
    assert sandbox.text(URL, {"name": "x", "pwd": "y", "type": "balance"}) == "10,賬戶不存在"


def test_an_injected_reply_is_minus_one(sandbox: Sandbox) -> None:
    sandbox.faults(error_rate=1.0, errors=["reply"])

    assert sandbox.text(URL, sms()) == "-1,系統異常"


def test_status_reports_are_signed_and_group_numbers_by_state(sandbox: Sandbox) -> None:
    sandbox.state(undeliverable=["18700000000"])
    send_id = sandbox.text(URL, sms(mobile="18266878877,18655555555,18700000000")).split(",")[1]

    sandbox.wait_pushes(2)

    reports = {r["state"]: r for r in sandbox.receiver.forms()}
    assert reports["DELIVRD"]["mobile"] == "18266878877,18655555555"
    failed = [r for state, r in reports.items() if state != "DELIVRD"]
    assert [r["mobile"] for r in failed] == ["18700000000"]
    for report in reports.values():
        assert set(report) == {
            "name",
            "pwd",
            "sendid",
            "time",
            "mobile",
            "state",
            "random",
            "timestamp",
        }
        assert report["sendid"] == send_id.strip()
        expected = hashlib.md5(
            ("sandbox-access-secret" + report["random"] + report["timestamp"]).encode()
        ).hexdigest()
        assert report["name"] == expected
        assert report["pwd"] == ""


def test_content_marked_reject_is_reported_as_audit_rejected(sandbox: Sandbox) -> None:
    sandbox.text(URL, sms(mobile="18266878877", content="REJECT this"))
    sandbox.wait_pushes(1)

    assert sandbox.receiver.forms()[0]["state"] == "REJECT"


def test_mo_push_joins_fields_and_messages_with_the_documented_separators(
    make_sandbox: MakeSandbox,
) -> None:
    sandbox = make_sandbox(chuangrui_mo_name="admin", chuangrui_mo_pwd="12345")
    sandbox.text(URL, sms(mobile="13800210021", extno="123"))
    sandbox.wait_pushes(1)

    sandbox.client.post(
        "/_sandbox/mo",
        json={
            "vendor": "chuangrui",
            "phone": "13800210021",
            "content": "content1",
            "more": [
                {
                    "vendor": "chuangrui",
                    "phone": "13978767656",
                    "content": "content2",
                    "extno": "456",
                }
            ],
        },
    ).raise_for_status()
    sandbox.wait_pushes(2)

    mo = sandbox.receiver.forms()[-1]
    assert (mo["name"], mo["pwd"]) == ("admin", "12345")
    first, second = mo["args"].split("#@@#")
    phone, content, when, ext = first.split("#@#")
    assert (phone, content, ext) == ("13800210021", "content1", "008123")
    assert len(when) == 19
    assert second.split("#@#")[::3] == ["13978767656", "008456"]
