"""The /_sandbox endpoints: faults, request log, state, reset."""

from __future__ import annotations

import time

import pytest

from tests.sandbox.conftest import VEESING, MakeSandbox, Sandbox
from worker.sandbox.middleware import FaultRefused

SEND = "/smsApi/group"
FORM = {**VEESING, "phone": "15080929435", "content": "【签名】你好"}
UNKNOWN_REPLY = (
    "{\n"
    '  "returnStatus": "0",\n'
    '  "message": "未知原因,请联系客服",\n'
    '  "remainPoint": null,\n'
    '  "taskId": null,\n'
    '  "successCounts": null\n'
    "}"
)


def test_an_injected_reply_is_the_vendors_retryable_failure_and_sends_nothing(
    sandbox: Sandbox,
) -> None:
    sandbox.faults(error_rate=1.0, errors=["reply"], limit=1)

    assert sandbox.text(SEND, FORM) == UNKNOWN_REPLY
    assert sandbox.log() == []
    assert sandbox.json(SEND, FORM)["returnStatus"] == "1 "  # the limit is spent


def test_an_injected_reply_can_be_any_documented_message(sandbox: Sandbox) -> None:
    sandbox.faults(error_rate=1.0, errors=["reply"], reply_message="模板id格式不正确")

    assert sandbox.json(SEND, FORM)["message"] == "模板id格式不正确"
    assert sandbox.post("/chuangrui/sms", {}).text == "模板id格式不正确"


def test_the_injected_replies_of_chuangrui_and_5c(sandbox: Sandbox) -> None:
    sandbox.faults(error_rate=1.0, errors=["reply"])

    assert sandbox.post("/chuangrui/sms", {}).text == "-1,系統異常"
    fivec = sandbox.post("/api/send/caixin_send.php", {}).text
    assert fivec.startswith("error:") and fivec.removeprefix("error:").isdigit()
    assert sandbox.post("/api/recv/index.php", {}).status_code == 503


def test_an_injected_503(sandbox: Sandbox) -> None:
    sandbox.faults(error_rate=1.0, errors=["503"])

    response = sandbox.post(SEND, FORM)

    assert response.status_code == 503
    assert sandbox.log() == []


def test_an_injected_refusal_answers_nothing(sandbox: Sandbox) -> None:
    sandbox.faults(error_rate=1.0, errors=["refuse"])

    with pytest.raises(FaultRefused):
        sandbox.post(SEND, FORM)
    assert sandbox.log() == []
    (entry,) = sandbox.client.get("/_sandbox/requests").json()
    assert (entry["fault"], entry["outcome"], entry["status"]) == ("refuse", "refused", 0)


def test_faults_can_be_limited_to_paths(sandbox: Sandbox) -> None:
    sandbox.faults(error_rate=1.0, errors=["503"], paths=["/smsApi/group/getBalance"])

    assert sandbox.post("/smsApi/group/getBalance", VEESING).status_code == 503
    assert sandbox.post(SEND, FORM).status_code == 200


def test_a_timeout_after_send_logs_the_message_then_stalls(sandbox: Sandbox) -> None:
    sandbox.faults(timeout_after_send_rate=1.0, stall_s=0.4)

    started = time.monotonic()
    reply = sandbox.json(SEND, FORM)

    assert time.monotonic() - started >= 0.4
    assert [s["ref"] for s in sandbox.log()] == [reply["taskId"]]
    (entry,) = sandbox.client.get("/_sandbox/requests").json()
    assert entry["fault"] == "timeout_after_send"
    assert entry["accepted"] is True


def test_latency_is_added_to_every_vendor_reply(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(latency_s=0.2)
    sandbox.faults(latency_s=0.1)

    started = time.monotonic()
    sandbox.post("/smsApi/group/getBalance", VEESING)

    assert time.monotonic() - started >= 0.3


def test_the_request_log_has_times_and_reply_classes(sandbox: Sandbox) -> None:
    sandbox.post(SEND, FORM)
    sandbox.post(SEND, FORM)

    first, second = sandbox.client.get("/_sandbox/requests").json()

    assert (first["path"], first["outcome"], first["accepted"]) == (SEND, "ok", True)
    assert (second["outcome"], second["detail"]) == ("error", "相同手机号码一分钟之内只可发送一次")
    assert first["start"] <= first["end"] <= second["start"] <= second["end"]
    assert first["status"] == 200


def test_reset_clears_logs_counters_faults_and_state(sandbox: Sandbox) -> None:
    sandbox.json(SEND, FORM)
    sandbox.faults(error_rate=1.0, errors=["503"])
    sandbox.state(status="locked", balance=0)

    sandbox.client.post("/_sandbox/reset").raise_for_status()

    assert sandbox.log() == []
    assert sandbox.client.get("/_sandbox/requests").json() == []
    assert sandbox.client.get("/_sandbox/faults").json()["error_rate"] == 0
    assert sandbox.json(SEND, FORM)["remainPoint"] == "999999"


def test_an_unknown_account_name_is_refused(sandbox: Sandbox) -> None:
    response = sandbox.client.post("/_sandbox/state", json={"account": "nobody"})

    assert response.status_code == 422
