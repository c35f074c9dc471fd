"""Veesing voice: one phone, template and variable rules, receipt with talk time."""

from __future__ import annotations

import pytest

from tests.sandbox.conftest import VEESING, MakeSandbox, Sandbox

SEND = "/voiceApi"


def failure(message: str) -> str:
    return (
        "{\n"
        '  "returnStatus": "0",\n'
        f'  "message": "{message}",\n'
        '  "remainPoint": null,\n'
        '  "taskId": null,\n'
        '  "successCounts": null\n'
        "}"
    )


def voice(
    template: str = "724", phone: str = "15080929435", variables: str = "1234"
) -> dict[str, str]:
    return {**VEESING, "templateId": template, "phone": phone, "variables": variables}


def test_a_voice_code_is_accepted_logged_and_receipted(sandbox: Sandbox) -> None:
    response = sandbox.post(SEND, voice())

    task_id = response.json()["taskId"]
    assert response.content.decode() == (
        "{\n"
        '  "returnStatus": "1 ",\n'
        '  "message": "成功",\n'
        '  "remainPoint": "999999",\n'
        f'  "taskId": "{task_id}",\n'
        '  "successCounts": "1"\n'
        "}"
    )
    (sent,) = sandbox.log()
    assert (sent["vendor"], sent["product"], sent["phone"], sent["ref"], sent["content"]) == (
        "veesing",
        "voice",
        "15080929435",
        task_id,
        "1234",
    )
    sandbox.wait_pushes(1)
    (receipt,) = sandbox.receiver.forms()
    assert set(receipt) == {
        "mobile",
        "taskid",
        "status",
        "code",
        "receivetime",
        "talktime",
        "remark",
    }
    assert (receipt["mobile"], receipt["taskid"], receipt["status"]) == (
        "15080929435",
        task_id,
        "1",
    )
    assert int(receipt["talktime"]) > 0


@pytest.mark.parametrize(
    ("form", "message"),
    [
        (voice() | {"appId": "x"}, "账号或密码错误"),
        (voice(variables=""), "缺少参数"),
        (voice(template="7a4"), "模板id格式不正确"),
        (voice(template="999"), "模板不存在或者未通过"),
        (voice(phone="15080929435,17608432793"), "手机号码格式不正确"),
        (voice(variables="1"), "参数错误"),
        (voice(variables="123456789"), "参数错误"),
        (voice(variables="12ab"), "参数错误"),
        (voice(template="725", variables="长" * 51), "参数错误"),
        (voice(template="725", variables="您好😀"), "参数错误"),
    ],
)
def test_each_error(sandbox: Sandbox, form: dict[str, str], message: str) -> None:
    assert sandbox.text(SEND, form) == failure(message)
    assert sandbox.log() == []


def test_a_notice_of_fifty_characters_is_accepted(sandbox: Sandbox) -> None:
    assert sandbox.json(SEND, voice(template="725", variables="长" * 50))["returnStatus"] == "1 "


def test_limits_and_balance(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(balance=2, per_number_daily_cap=1, minute_rule_s=0)
    sandbox.json(SEND, voice())
    assert sandbox.text(SEND, voice()) == failure("该号码今日发送次数已达上限")
    sandbox.json(SEND, voice(phone="17608432793"))
    assert sandbox.text(SEND, voice(phone="13800138000")) == failure("余额不足")

    minute = make_sandbox()
    minute.json(SEND, voice())
    assert minute.text(SEND, voice()) == failure("相同手机号码一分钟之内只可发送一次")


def test_an_unanswered_call_reports_failure_with_no_talk_time(sandbox: Sandbox) -> None:
    sandbox.state(undeliverable=["15080929435"])
    sandbox.json(SEND, voice())
    sandbox.wait_pushes(1)

    (receipt,) = sandbox.receiver.forms()
    assert (receipt["status"], receipt["talktime"]) == ("0", "0")


def test_both_balance_addresses(sandbox: Sandbox) -> None:
    for path in ("/voiceApi/getBalance", "/voiceApi/group/getBalance"):
        assert sandbox.json(path, VEESING)["remainPoint"] == "1000000"
