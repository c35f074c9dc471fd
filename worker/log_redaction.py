"""Nothing secret and no whole phone number in herald's logs (docs/design.md, promise 7).

`RedactLogs` is a logging filter that rewrites each record before it is written: mainland
mobile numbers become `138****8000`; the values of herald's secret settings, API keys
(`hk_...`), the callback token in a push path and credential fields in query strings
(`pwd=`, `password=`, `apikey=`, ...) become `***`. It covers the message, its arguments (each
kept in its type where it can be, so uvicorn's access formatter still finds its five),
tracebacks and stack traces.

`install` puts it on every handler of the given loggers (and the root), and on the handler of
last resort; the API calls it at start, the worker and beat from Celery's logging signals
(worker/app.py).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import SecretStr

from worker.settings import Settings, get_settings

MASK = "***"
MIN_SECRET_CHARS = 4
"""Shorter secret values are not masked: they would hide every such run of characters."""
MOBILE = re.compile(
    r"(?:(?<![0-9A-Za-z])|(?<=%[0-9A-Fa-f]{2}))((?:\+?86)?1[3-9]\d)(\d{4})(\d{4})(?![0-9A-Za-z])"
)
"""A mainland mobile, alone or after +86/86, also right after a %-escape (`%2C`, `%2B`); not
inside a longer run of letters and digits (a hex id)."""
API_KEY = re.compile(r"\bhk_[A-Za-z0-9_-]{8,}")
CALLBACK_TOKEN_IN_PATH = re.compile(r"(/callbacks/[^/\s]+/[^/\s]+/)[^/\s?\"]+")
CREDENTIAL_IN_QUERY = re.compile(
    r"(?i)\b(pwd|password|passwd|apikey|api_key|appkey|app_key|accesssecret|access_secret|token|"
    r"secret)=([^&\s\"']+)"
)


def mask_mobiles(text: str) -> str:
    return MOBILE.sub(r"\1****\3", text)


def secret_values(settings: Settings) -> list[str]:
    """Every secret the settings hold: SecretStr fields, each API key, Flower's password."""
    values: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            values.append(value.get_secret_value())
    values += [key.get_secret_value() for key in settings.configured_api_keys().values()]
    if settings.flower_basic_auth is not None:
        for pair in settings.flower_basic_auth.get_secret_value().split(","):
            values.append(pair.partition(":")[2])
    return [v for v in values if len(v) >= MIN_SECRET_CHARS]


class Redactor:
    """Masks secrets (a fixed list, longest first) and mobile numbers in text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        unique = sorted(set(secrets), key=len, reverse=True)
        self._secrets = re.compile("|".join(map(re.escape, unique))) if unique else None

    def __call__(self, text: str) -> str:
        text = CALLBACK_TOKEN_IN_PATH.sub(rf"\1{MASK}", text)
        text = CREDENTIAL_IN_QUERY.sub(rf"\1={MASK}", text)
        if self._secrets is not None:
            text = self._secrets.sub(MASK, text)
        text = API_KEY.sub(f"hk_{MASK}", text)
        return mask_mobiles(text)


class RedactLogs(logging.Filter):
    """A filter that hides secrets and phone numbers in every record it sees; never drops one.

    The secrets are read from the settings (`get_settings()`) unless given, and read again when
    the settings are.
    """

    def __init__(self, secrets: Iterable[str] | None = None) -> None:
        super().__init__()
        self._fixed = None if secrets is None else Redactor(secrets)
        self._settings: Settings | None = None
        self._from_settings = Redactor()

    def redactor(self) -> Redactor:
        if self._fixed is not None:
            return self._fixed
        try:
            settings = get_settings()
        except Exception:  # invalid settings: the process is failing anyway; mask what we can
            return self._from_settings
        if settings is not self._settings:
            self._settings, self._from_settings = settings, Redactor(secret_values(settings))
        return self._from_settings

    def filter(self, record: logging.LogRecord) -> bool:
        redact = self.redactor()
        try:
            message: str | None = record.getMessage()
        except Exception:  # a broken format string: logging reports it, redacted below
            message = None
        if message is None or redact(message) != message:
            self._redact_message(record, redact, message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True

    @staticmethod
    def _redact_message(record: logging.LogRecord, redact: Redactor, message: str | None) -> None:
        """Redact the format and each argument, keeping their types where that is enough (a
        formatter may read the arguments); otherwise the message becomes the redacted text."""
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted_arg(a, redact) for a in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {k: _redacted_arg(v, redact) for k, v in record.args.items()}
        if message is None:
            return
        try:
            rewritten = record.getMessage()
        except Exception:
            rewritten = None
        if rewritten is None or redact(rewritten) != rewritten:
            record.msg, record.args = redact(message), ()


def _redacted_arg(value: Any, redact: Redactor) -> Any:
    """A string argument redacted; another kind kept unless its text shows something to hide."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, (bool, float)) or value is None:
        return value
    try:
        text = str(value)
    except Exception:
        return value
    redacted = redact(text)
    return value if redacted == text else redacted


def install(*logger_names: str, log_filter: logging.Filter | None = None) -> logging.Filter:
    """Put the filter on every handler of the root logger and of `logger_names`, and on the
    handler of last resort (what prints a warning when no handler is configured)."""
    log_filter = log_filter or RedactLogs()
    handlers: list[logging.Handler] = []
    for name in ("", *logger_names):
        handlers += logging.getLogger(name or None).handlers
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    for handler in handlers:
        if not any(isinstance(f, RedactLogs) for f in handler.filters):
            handler.addFilter(log_filter)
    return log_filter
