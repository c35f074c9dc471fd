"""Veesing SMS: replies byte for byte, every documented failure, receipts, MO."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.sandbox.conftest import PUSH_URL, VEESING, MakeSandbox, Sandbox

SEND = "/smsApi/group"
BALANCE = "/smsApi/group/getBalance"
CONTENT = "【中昱维信】您的短信群发功能已开通,请在3个工作日之内至平台进行企业认证!"


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


def sms(
    phone: str = "15080929435,17608432793", content: str = CONTENT, **extra: str
) -> dict[str, str]:
    return {**VEESING, "phone": phone, "content": content, **extra}


def test_a_group_send_answers_the_documented_success_body(sandbox: Sandbox) -> None:
    response = sandbox.post(SEND, sms())

    assert response.headers["content-type"].startswith("application/json")
    task_id = response.json()["taskId"]
    assert response.content.decode() == (
        "{\n"
        '  "returnStatus": "1 ",\n'
        '  "message": "成功",\n'
        '  "remainPoint": "999998",\n'
        f'  "taskId": "{task_id}",\n'
        '  "successCounts": "2"\n'
        "}"
    )
    assert response.json()["taskId"].isdigit()


def test_accepted_messages_are_in_the_send_log_and_its_file(
    make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    log_file = tmp_path / "sends.jsonl"
    sandbox = make_sandbox(log_file=log_file)

    task_id = sandbox.json(SEND, sms())["taskId"]

    memory = sandbox.log()
    assert [(s["vendor"], s["product"], s["phone"], s["ref"], s["content"]) for s in memory] == [
        ("veesing", "sms", "15080929435", task_id, CONTENT),
        ("veesing", "sms", "17608432793", task_id, CONTENT),
    ]
    assert memory[0]["at"].endswith("+08:00")
    assert [json.loads(line) for line in log_file.read_text("utf-8").splitlines()] == memory


def test_parameters_in_the_query_string_are_accepted(sandbox: Sandbox) -> None:
    response = sandbox.client.post(BALANCE, params=VEESING)

    assert response.json()["remainPoint"] == "1000000"
    assert response.json()["returnStatus"] == "1 "


@pytest.mark.parametrize(
    ("form", "message"),
    [
        (sms() | {"appKey": "wrong"}, "账号或密码错误"),
        ({k: v for k, v in sms().items() if k != "appId"}, "缺少参数"),
        ({k: v for k, v in sms().items() if k != "content"}, "缺少参数"),
        ({k: v for k, v in sms().items() if k != "phone"}, "缺少参数"),
        (sms(phone="1508092943"), "手机号码格式不正确"),
        (sms(phone="15080929435,2508092943a"), "手机号码格式不正确"),
        (sms(content="您的短信群发功能已开通"), "模板不存在或者未通过"),
        (sms(content="【中昱维信】开通了😀"), "参数错误"),
        (sms(sendTime="2018/08/21 14:00"), "参数错误"),
    ],
)
def test_each_request_error_answers_its_documented_message(
    sandbox: Sandbox, form: dict[str, str], message: str
) -> None:
    assert sandbox.text(SEND, form) == failure(message)
    assert sandbox.log() == []


def test_the_minute_rule_fails_the_whole_group_then_frees(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(minute_rule_s=0.3)
    sandbox.json(SEND, sms(phone="15080929435"))

    assert sandbox.text(SEND, sms()) == failure("相同手机号码一分钟之内只可发送一次")
    assert [s["phone"] for s in sandbox.log()] == ["15080929435"]
    time.sleep(0.35)
    assert sandbox.json(SEND, sms())["successCounts"] == "2"


def test_a_number_twice_in_one_request_breaks_the_minute_rule(sandbox: Sandbox) -> None:
    assert sandbox.text(SEND, sms(phone="15080929435,15080929435")) == failure(
        "相同手机号码一分钟之内只可发送一次"
    )


def test_the_per_number_daily_cap_resets_on_the_next_shanghai_day(
    make_sandbox: MakeSandbox,
) -> None:
    sandbox = make_sandbox(per_number_daily_cap=2, minute_rule_s=0)
    for _ in range(2):
        sandbox.json(SEND, sms(phone="15080929435"))

    assert sandbox.text(SEND, sms(phone="15080929435")) == failure("该号码今日发送次数已达上限")
    sandbox.state(clock_offset_s=86400)
    assert sandbox.json(SEND, sms(phone="15080929435"))["returnStatus"] == "1 "


def test_the_account_daily_cap(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(account_daily_cap=3)
    sandbox.json(SEND, sms())

    assert sandbox.text(SEND, sms()) == failure("当日发送量已超出最大发送限制")
    assert sandbox.json(SEND, sms(phone="13800138000"))["successCounts"] == "1"


def test_balance_is_charged_per_segment_and_runs_out(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(balance=5)
    long_content = "【签名】" + "长" * 80  # 84 characters: two segments

    assert sandbox.json(SEND, sms(content=long_content))["remainPoint"] == "1"
    assert sandbox.text(SEND, sms(phone="13800138000,13900139000")) == failure("余额不足")
    assert sandbox.json(BALANCE, VEESING)["remainPoint"] == "1"


def test_a_locked_account_and_an_ip_restriction(sandbox: Sandbox) -> None:
    sandbox.state(account="veesing", status="locked")
    assert sandbox.text(SEND, sms()) == failure("您的账户已被锁定,请联系您的专属客服")
    assert sandbox.text(BALANCE, VEESING) == failure("您的账户已被锁定,请联系您的专属客服")

    sandbox.state(account="veesing_sms", status="active", ip_blocked=True)
    assert sandbox.text(BALANCE, VEESING) == failure("IP受限")


def test_balance_reply_is_the_documented_body(sandbox: Sandbox) -> None:
    assert sandbox.text(BALANCE, VEESING) == (
        "{\n"
        '  "returnStatus": "1 ",\n'
        '  "message": "成功",\n'
        '  "remainPoint": "1000000",\n'
        '  "taskId": null,\n'
        '  "successCounts": null\n'
        "}"
    )
    assert sandbox.text(BALANCE, {"appId": "sandbox-app-id"}) == failure("缺少参数")


def test_one_receipt_per_phone_is_pushed_with_the_documented_fields(sandbox: Sandbox) -> None:
    task_id = sandbox.json(SEND, sms())["taskId"]

    done = sandbox.wait_pushes(2)

    assert {p["result"] for p in done} == {"delivered"}
    receipts = sorted(sandbox.receiver.forms(), key=lambda r: r["mobile"])
    assert [(r["mobile"], r["taskid"], r["status"]) for r in receipts] == [
        ("15080929435", task_id, "1"),
        ("17608432793", task_id, "1"),
    ]
    assert set(receipts[0]) == {"mobile", "taskid", "status", "code", "receivetime"}
    assert time.strptime(receipts[0]["receivetime"], "%Y-%m-%d %H:%M:%S")
    request = sandbox.receiver.accepted[0]
    assert str(request.url) == PUSH_URL
    assert request.headers["content-type"].startswith("application/x-www-form-urlencoded")


def test_undeliverable_numbers_and_the_undelivered_rate_report_failure(
    make_sandbox: MakeSandbox,
) -> None:
    sandbox = make_sandbox(undelivered_rate=1.0)
    sandbox.json(SEND, sms())
    sandbox.wait_pushes(2)
    assert {r["status"] for r in sandbox.receiver.forms()} == {"0"}

    other = make_sandbox()
    other.state(undeliverable=["17608432793"])
    other.json(SEND, sms())
    other.wait_pushes(2)
    statuses = {r["mobile"]: r["status"] for r in other.receiver.forms()}
    assert statuses == {"15080929435": "1", "17608432793": "0"}


def test_a_push_is_retried_while_the_receiver_fails_then_given_up(
    make_sandbox: MakeSandbox,
) -> None:
    sandbox = make_sandbox(fail_first=2)
    sandbox.json(SEND, sms(phone="15080929435"))
    (push,) = sandbox.wait_pushes(1)
    assert push["result"] == "delivered"
    assert push["attempts"] == 3

    failing = make_sandbox(fail_first=100, push_attempts=3)
    failing.json(SEND, sms(phone="15080929435"))
    (push,) = failing.wait_pushes(1)
    assert push["result"] == "given_up"
    assert push["error"] == "HTTP 500"
    assert len(failing.receiver.seen) == 3


def test_a_future_send_time_holds_the_receipt_until_then(sandbox: Sandbox) -> None:
    # Shanghai wall time 1.5 s ahead, rounded down to the second: 0.5 to 1.5 s from now.
    later = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() + 8 * 3600 + 1.5))

    sandbox.json(SEND, sms(phone="15080929435", sendTime=later))
    time.sleep(0.3)
    assert sandbox.receiver.accepted == []
    sandbox.wait_pushes(1, timeout_s=3)
    assert sandbox.log()[0]["send_at"].startswith(later.replace(" ", "T"))
    assert sandbox.receiver.forms()[0]["receivetime"] >= later


def test_a_reply_is_pushed_with_the_last_task_id(sandbox: Sandbox) -> None:
    task_id = sandbox.json(SEND, sms(phone="15080929435"))["taskId"]
    sandbox.wait_pushes(1)

    sandbox.client.post(
        "/_sandbox/mo", json={"vendor": "veesing", "phone": "15080929435", "content": "收到"}
    ).raise_for_status()
    sandbox.wait_pushes(2)

    reply = sandbox.receiver.forms()[-1]
    assert set(reply) == {"mobile", "taskid", "content", "receivetime"}
    assert (reply["mobile"], reply["taskid"], reply["content"]) == ("15080929435", task_id, "收到")
