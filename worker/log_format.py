"""JSON logs (HERALD_LOG_JSON=1): one JSON object a line, for a log collector to read.

Each line holds `time` (ISO 8601 in Asia/Shanghai, with its offset), `level`, `logger` and
`message`, an exception's traceback as `exc_info`, and the context a log call passed as
`extra=`: `job_id`, `push_id`, `vendor`, `attempt`, `error_class` (and `task_id`/`task_name` on
Celery's task logger). Nothing else of the record is written: an unknown extra (uvicorn's
`color_message`, Celery's task `data` with its arguments and result) could carry what must not
be logged.

Redaction (worker/log_redaction.py) stays a filter on the same handlers, and a handler's filters
run before its formatter, so the message and traceback are already masked when they get here;
the formatter masks every string it writes once more, since it formats the traceback itself and
an `extra=` value passes no filter.

`install` puts it on every handler of the given loggers (and the root); the API calls it when it
is imported and when it starts, the worker and beat from Celery's logging signals (worker/app.py).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from worker import log_redaction
from worker.clock import SHANGHAI
from worker.settings import get_settings

CONTEXT_FIELDS = (
    "job_id",
    "push_id",
    "vendor",
    "attempt",
    "error_class",
    "task_id",
    "task_name",
)
"""The `extra=` keys a line may carry besides its time, level, logger and message."""
FIELDS = frozenset(
    {"time", "level", "logger", "message", "exc_info", "stack_info", *CONTEXT_FIELDS}
)
LOG_ZONE = SHANGHAI
"""Times are written in the zone the operators and the vendors read (Celery's `timezone`)."""


class JsonLogFormatter(JsonFormatter):
    """One JSON object per record: the fields above, every string in it redacted."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            json_ensure_ascii=False,
        )
        self._redaction = log_redaction.RedactLogs()

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, LOG_ZONE).isoformat(timespec="milliseconds")

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        redact = self._redaction.redactor()
        return {
            key: redact(value) if isinstance(value, str) else value
            for key, value in log_data.items()
            if key in FIELDS and value is not None
        }


def json_logs_enabled() -> bool:
    try:
        return get_settings().log_json
    except Exception:  # invalid settings: the process is failing anyway; log as it can
        return False


def install(*logger_names: str, enabled: bool | None = None) -> None:
    """With JSON logs on (HERALD_LOG_JSON, or `enabled`), give every handler of the root logger
    and of `logger_names`, and the handler of last resort, the JSON formatter, and the
    redaction filter if it has none yet; Python's warnings are logged from then on."""
    if not (json_logs_enabled() if enabled is None else enabled):
        return
    log_redaction.install(*logger_names)
    handlers = [h for name in ("", *logger_names) for h in logging.getLogger(name or None).handlers]
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    for handler in handlers:
        if not isinstance(handler.formatter, JsonLogFormatter):
            handler.setFormatter(JsonLogFormatter())
    logging.captureWarnings(True)  # a warning is a log line too, not plain text on stderr
