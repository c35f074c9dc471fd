"""JSON logs (worker/log_format.py): one JSON object a line, with the context a log call gives,
phones masked and no secret; installed only when HERALD_LOG_JSON says so."""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.support import SettingsEnv
from worker.log_format import JsonLogFormatter, install
from worker.log_redaction import RedactLogs

SECRET = "s3cret-app-key-value"


def captured(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """The root logger with one handler, writing to the returned buffer, for `install` to change
    until the test ends; a fresh handler of last resort; warnings left to pytest. Called in the
    test's body: pytest adds its own handlers to the root when the body starts, and those must
    be left alone."""
    stream = io.StringIO()
    monkeypatch.setattr(logging.getLogger(), "handlers", [logging.StreamHandler(stream)])
    monkeypatch.setattr(logging, "lastResort", logging.StreamHandler(io.StringIO()))
    monkeypatch.setattr(logging, "captureWarnings", lambda capture: None)
    return stream


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_has_time_level_logger_message_and_the_context_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = captured(monkeypatch)
    install(enabled=True)

    logging.getLogger("tasks.send").warning(
        "job %s: %s; attempt %d",
        "3f2a9c0e",
        "veesing: 系统繁忙",
        2,
        extra={"job_id": "3f2a9c0e", "vendor": "veesing", "attempt": 2, "error_class": "X"},
    )

    (line,) = lines(stream)
    assert line.pop("message") == "job 3f2a9c0e: veesing: 系统繁忙; attempt 2"
    time = datetime.fromisoformat(line.pop("time"))
    assert time.utcoffset() == timedelta(hours=8)
    assert abs(time - datetime.now(time.tzinfo)) < timedelta(minutes=1)
    assert line == {
        "level": "WARNING",
        "logger": "tasks.send",
        "job_id": "3f2a9c0e",
        "vendor": "veesing",
        "attempt": 2,
        "error_class": "X",
    }


def test_phones_and_secrets_are_masked_in_the_message_the_context_and_the_traceback(
    settings_env: SettingsEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = captured(monkeypatch)
    settings_env.setenv("HERALD_VEESING_APP_KEY", SECRET)
    install(enabled=True)
    log = logging.getLogger("tasks.pushes")

    try:
        raise ValueError(f"mobile 13800138000 refused with key {SECRET}")
    except ValueError:
        log.exception("push for %s with %s", "13900139000", SECRET, extra={"vendor": "13700137000"})

    text = stream.getvalue()
    assert "13800138000" not in text and "13900139000" not in text and "13700137000" not in text
    assert SECRET not in text
    (line,) = lines(stream)
    assert line["message"] == "push for 139****9000 with ***"
    assert line["vendor"] == "137****7000"
    assert "ValueError: mobile 138****8000 refused with key ***" in line["exc_info"]


def test_the_redaction_filter_runs_before_the_formatter(monkeypatch: pytest.MonkeyPatch) -> None:
    captured(monkeypatch)
    install(enabled=True)
    (handler,) = logging.getLogger().handlers
    seen: list[str] = []

    class Spy(JsonLogFormatter):
        def format(self, record: logging.LogRecord) -> str:
            seen.append(record.getMessage())
            return super().format(record)

    handler.setFormatter(Spy())
    logging.getLogger("worker.test").warning("to %s", "13800138000")

    assert any(isinstance(f, RedactLogs) for f in handler.filters)
    assert seen == ["to 138****8000"]


def test_what_a_log_call_did_not_ask_for_is_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = captured(monkeypatch)
    install(enabled=True)

    logging.getLogger("celery.app.trace").warning(
        "Task %s succeeded",
        "herald.send_job",
        extra={"data": {"args": "['13800138000']"}, "color_message": "\x1b[32mTask\x1b[0m"},
    )

    (line,) = lines(stream)
    assert set(line) == {"time", "level", "logger", "message"}


def test_install_changes_nothing_unless_json_logs_are_asked_for(
    settings_env: SettingsEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = captured(monkeypatch)
    install()
    logging.getLogger("worker.test").warning("plain")
    assert stream.getvalue() == "plain\n"

    settings_env.setenv("HERALD_LOG_JSON", "true")
    install()
    logging.getLogger("worker.test").warning("json")
    plain, json_line = stream.getvalue().splitlines()
    assert plain == "plain" and json.loads(json_line)["message"] == "json"


def test_celery_loggers_get_it_from_the_worker_and_beat_set_up(
    settings_env: SettingsEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    from worker.app import redact_logs

    captured(monkeypatch)

    settings_env.setenv("HERALD_LOG_JSON", "1")
    task_logger = logging.getLogger("celery.task")
    handler = logging.StreamHandler(io.StringIO())
    task_logger.addHandler(handler)
    try:
        redact_logs(task_logger)
    finally:
        task_logger.removeHandler(handler)

    assert isinstance(handler.formatter, JsonLogFormatter)
    assert any(isinstance(f, RedactLogs) for f in handler.filters)
    assert isinstance(logging.getLogger().handlers[0].formatter, JsonLogFormatter)
