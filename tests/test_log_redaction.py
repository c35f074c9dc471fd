"""No secret and no whole phone number in herald's logs (worker/log_redaction.py), and none in
the sandbox's (worker/sandbox/log_masking.py)."""

from __future__ import annotations

import io
import logging
import sys

import pytest
from uvicorn.logging import AccessFormatter

from tests.support import SettingsEnv
from worker.log_redaction import RedactLogs, install, mask_mobiles
from worker.sandbox.config import SandboxConfig
from worker.sandbox.log_masking import MaskPushTokens, push_tokens

SECRET = "s3cret-app-key-value"


def record(msg: str, *args: object, name: str = "worker.test") -> logging.LogRecord:
    return logging.LogRecord(name, logging.INFO, __file__, 1, msg, args, None)


def shown(log_record: logging.LogRecord, log_filter: logging.Filter | None = None) -> str:
    (log_filter or RedactLogs([SECRET])).filter(log_record)
    return logging.Formatter().format(log_record)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("13800138000", "138****8000"),
        ("+8613800138000", "+86138****8000"),
        ("mobile=13800138000,13900139000", "mobile=138****8000,139****9000"),
        ("手机13800138000收到", "手机138****8000收到"),
        ("/v1/suppressions/13800138000", "/v1/suppressions/138****8000"),
        ("mobile=13800138000%2C13900139000", "mobile=138****8000%2C139****9000"),
        ("phone=%2B8613800138000", "phone=%2B86138****8000"),
    ],
)
def test_mainland_mobiles_are_masked(text: str, masked: str) -> None:
    assert mask_mobiles(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "job 0b7f13800138000a9c4e2d1f00000000",  # a hex job id holding 11 digits
        "12800138000",  # not a mobile prefix
        "138001380001",  # 12 digits
        "balance 1000000 at 1732440000",
    ],
)
def test_other_numbers_are_left_alone(text: str) -> None:
    assert mask_mobiles(text) == text


def test_phones_and_secrets_in_arguments_and_the_message_are_masked() -> None:
    message = shown(record("sent %s with %s to %d numbers", "13800138000", SECRET, 3))

    assert message == "sent 138****8000 with *** to 3 numbers"


def test_a_phone_given_as_an_integer_is_masked_too() -> None:
    assert shown(record("number %d", 13800138000)) == "number 138****8000"


def test_credential_fields_in_query_strings_and_api_keys_are_masked() -> None:
    line = shown(
        record(
            "GET /callbacks/chuangrui/mo?name=n&pwd=hunter2&args=x %s",
            "hk_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
        )
    )

    assert "hunter2" not in line and "AbCdEf" not in line
    assert "pwd=***" in line and "hk_***" in line


def test_tracebacks_are_masked() -> None:
    try:
        raise ValueError(f"bad number 13800138000 for key {SECRET}")
    except ValueError:
        failing = logging.LogRecord(
            "worker.test", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )

    text = shown(failing)

    assert "13800138000" not in text and SECRET not in text
    assert "bad number 138****8000 for key ***" in text


def test_the_secrets_are_read_from_the_settings(settings_env: SettingsEnv) -> None:
    settings_env.setenv("HERALD_FIVEC_PASSWORD", "fivec-password-value")
    settings_env.setenv("HERALD_API_KEYS", "shop=shop-key-0123456789abc")
    settings_env.setenv("HERALD_FLOWER_BASIC_AUTH", "admin:flower-password-value")

    line = shown(
        record(
            "%s %s %s", "fivec-password-value", "shop-key-0123456789abc", "flower-password-value"
        ),
        RedactLogs(),
    )

    assert line == "*** *** ***"


def test_the_access_log_keeps_its_five_arguments_and_hides_token_pwd_and_phones() -> None:
    access = record(
        '%s - "%s %s HTTP/%s" %d',
        "127.0.0.1:5000",
        "GET",
        "/callbacks/chuangrui/report?pwd=hunter2&mobile=13800138000&state=DELIVRD",
        "1.1",
        200,
        name="uvicorn.access",
    )

    RedactLogs([]).filter(access)
    line = AccessFormatter("%(client_addr)s - %(request_line)s %(status_code)s").format(access)

    assert "hunter2" not in line and "13800138000" not in line
    assert "pwd=***&mobile=138****8000&state=DELIVRD" in line


def test_install_puts_the_filter_on_every_handler_once() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("herald.test.install")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        install("herald.test.install")
        install("herald.test.install")
        logger.warning("to %s", "13800138000")
    finally:
        logger.removeHandler(handler)

    assert sum(isinstance(f, RedactLogs) for f in handler.filters) == 1
    assert stream.getvalue() == "to 138****8000\n"


def test_the_sandbox_masks_the_callback_token_of_its_push_urls() -> None:
    config = SandboxConfig(
        veesing_sms_push_url="http://127.0.0.1:8000/callbacks/veesing/sms/the-callback-token",
        veesing_mms_push_url="http://127.0.0.1:8000/callbacks/veesing/mms/the-callback-token",
    )
    line = record(
        "HTTP Request: %s %s %s", "POST", config.veesing_sms_push_url, '"HTTP/1.1 200 OK"'
    )

    assert push_tokens(config) == ["the-callback-token"]
    assert "the-callback-token" not in shown(line, MaskPushTokens(push_tokens(config)))


def test_task_events_for_flower_are_redacted_like_the_logs() -> None:
    from worker.app import app
    from worker.task_events import RedactingDispatcher, redacted_fields

    fields = redacted_fields({"result": "'malformed: mobile 13800138000'", "runtime": 0.1})

    assert issubclass(app.events.Dispatcher, RedactingDispatcher)
    assert fields == {"result": "'malformed: mobile 138****8000'", "runtime": 0.1}
