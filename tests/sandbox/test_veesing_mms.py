"""Veesing MMS: create with frame-encoded content, audit push, send, receipts."""

from __future__ import annotations

import base64

import pytest

from tests.sandbox.conftest import VEESING, MakeSandbox, Sandbox
from worker.sandbox.veesing_mms import ContentError, parse_content

CREATE, SEND = "/mmsApi/create", "/mmsApi/send"
JPG = base64.b64encode(b"\xff\xd8\xff\xe0fake-jpeg").decode()


def txt(text: str) -> str:
    return base64.b64encode(text.encode("gbk")).decode()


CONTENT = f"5,jpg|{JPG},txt|{txt('中昱维信双十一大促')};3,txt|{txt('欢迎莅临采购')}"


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


def create(sandbox: Sandbox, title: str = "中昱双十一大促", content: str = CONTENT) -> str:
    reply = sandbox.json(CREATE, {**VEESING, "title": title, "content": content})
    assert reply["returnStatus"] == "1 ", reply
    return str(reply["taskId"])


def test_create_answers_the_mms_id_as_task_id_and_pushes_the_audit(sandbox: Sandbox) -> None:
    response = sandbox.post(CREATE, {**VEESING, "title": "中昱双十一大促", "content": CONTENT})

    mms_id = response.json()["taskId"]
    assert response.content.decode() == (
        "{\n"
        '  "returnStatus": "1 ",\n'
        '  "message": "成功",\n'
        '  "remainPoint": null,\n'
        f'  "taskId": "{mms_id}",\n'
        '  "successCounts": null\n'
        "}"
    )
    sandbox.wait_pushes(1)
    assert sandbox.receiver.forms() == [
        {"taskId": mms_id, "returnStatus": "1", "message": "审核通过"}
    ]


def test_a_rejected_mms_is_pushed_as_refused_and_cannot_be_sent(sandbox: Sandbox) -> None:
    mms_id = create(sandbox, title="REJECT me")
    sandbox.wait_pushes(1)

    assert sandbox.receiver.forms() == [
        {"taskId": mms_id, "returnStatus": "0", "message": "内容不合规"}
    ]
    form = {**VEESING, "mmsId": mms_id, "phone": "15080929435"}
    assert sandbox.text(SEND, form) == failure("模板不存在或者未通过")


def test_an_approved_mms_is_sent_logged_and_receipted(sandbox: Sandbox) -> None:
    mms_id = create(sandbox)
    sandbox.wait_pushes(1)

    reply = sandbox.json(SEND, {**VEESING, "mmsId": mms_id, "phone": "15080929435,17608432793"})

    assert (reply["returnStatus"], reply["remainPoint"], reply["successCounts"]) == (
        "1 ",
        "999998",
        "2",
    )
    assert [(s["product"], s["phone"], s["ref"]) for s in sandbox.log()] == [
        ("mms", "15080929435", reply["taskId"]),
        ("mms", "17608432793", reply["taskId"]),
    ]
    assert sandbox.log()[0]["content"] == "中昱维信双十一大促\n欢迎莅临采购"
    sandbox.wait_pushes(3)
    receipts = sandbox.receiver.forms()[1:]
    assert {r["mobile"] for r in receipts} == {"15080929435", "17608432793"}
    assert set(receipts[0]) == {"mobile", "taskid", "status", "receivetime"}
    assert {r["taskid"] for r in receipts} == {reply["taskId"]}


def test_an_mms_still_in_audit_cannot_be_sent(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(mms_audit_delay_s=30)
    mms_id = create(sandbox)

    form = {**VEESING, "mmsId": mms_id, "phone": "15080929435"}
    assert sandbox.text(SEND, form) == failure("模板不存在或者未通过")


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"mmsId": "55"}, "缺少参数"),
        ({"mmsId": "abc", "phone": "15080929435"}, "模板id格式不正确"),
        ({"mmsId": "999", "phone": "15080929435"}, "模板不存在或者未通过"),
        ({"mmsId": "{id}", "phone": "1508092943"}, "手机号码格式不正确"),
        ({"mmsId": "{id}", "phone": "15080929435", "sendTime": "tomorrow"}, "参数错误"),
    ],
)
def test_send_errors(sandbox: Sandbox, form: dict[str, str], message: str) -> None:
    mms_id = create(sandbox)
    sandbox.wait_pushes(1)
    form = {key: value.replace("{id}", mms_id) for key, value in form.items()}

    assert sandbox.text(SEND, {**VEESING, **form}) == failure(message)


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"appKey": "nope", "title": "t", "content": CONTENT}, "账号或密码错误"),
        ({"title": "t"}, "缺少参数"),
        ({"title": "t", "content": "5,png|AAAA"}, "参数错误"),
        ({"title": "t😀", "content": CONTENT}, "参数错误"),
    ],
)
def test_create_errors(sandbox: Sandbox, form: dict[str, str], message: str) -> None:
    assert sandbox.text(CREATE, {**VEESING, **form}) == failure(message)


def test_a_locked_account_and_the_two_balance_addresses(sandbox: Sandbox) -> None:
    for path in ("/mmsApi/getBalance", "/mmsApi/group/getBalance"):
        assert sandbox.json(path, VEESING)["remainPoint"] == "1000000"
    sandbox.state(account="veesing_mms", status="locked")
    locked = failure("您的账户已被锁定,请联系您的专属客服")
    assert sandbox.text(CREATE, {**VEESING, "title": "t", "content": CONTENT}) == locked
    assert sandbox.text("/mmsApi/getBalance", VEESING) == locked


@pytest.mark.parametrize(
    ("content", "rule"),
    [
        ("", "no frame"),
        (";".join(f"1,txt|{txt('x')}" for _ in range(16)), "16 frames"),
        (f"x,txt|{txt('a')}", "play time"),
        ("5", "without a file"),
        (f"5,txt|{txt('a')},txt|{txt('b')}", "two texts"),
        (f"5,jpg|{JPG},gif|{JPG}", "two media"),
        ("5,jpg|not base64!", "not base64"),
        ("5,txt|" + base64.b64encode(bytes([0xFF, 0xFF])).decode(), "not GBK"),
        (f"5,jpg|{base64.b64encode(b'x' * (80 * 1024 + 1)).decode()}", "at most 81920"),
    ],
)
def test_each_content_rule(content: str, rule: str) -> None:
    with pytest.raises(ContentError, match=rule):
        parse_content(content)


def test_content_with_a_trailing_separator_is_the_documents_full_format() -> None:
    frames = parse_content(CONTENT + ";")

    assert [(f.seconds, f.text, f.media and f.media[0]) for f in frames] == [
        (5, "中昱维信双十一大促", "jpg"),
        (3, "欢迎莅临采购", None),
    ]
