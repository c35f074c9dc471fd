"""Celery's task events, as Flower receives them, with no secret and no whole phone number.

Events carry a task's arguments, its return value, and a failed task's exception and traceback
as text. Arguments are ids (docs/design.md, promise 2), but a return value or an exception may
quote a vendor's push ("mobile is not a list of numbers: '138...'"). The dispatcher below
passes every text field through the logs' redactor (worker/log_redaction.py) before it leaves
the process; worker/app.py gives it to the Celery app.
"""

from __future__ import annotations

from typing import Any

from celery.app.events import Events
from celery.events.dispatcher import EventDispatcher

from worker.log_redaction import RedactLogs

_redact = RedactLogs()


def redacted_fields(fields: dict[str, Any]) -> dict[str, Any]:
    redactor = _redact.redactor()
    return {k: redactor(v) if isinstance(v, str) else v for k, v in fields.items()}


class RedactingDispatcher(EventDispatcher):  # type: ignore[misc]
    def send(self, type: str, *args: Any, **fields: Any) -> Any:
        return super().send(type, *args, **redacted_fields(fields))

    def publish(self, type: str, fields: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        return super().publish(type, redacted_fields(fields), *args, **kwargs)


class RedactedEvents(Events):  # type: ignore[misc]
    dispatcher_cls = "worker.task_events:RedactingDispatcher"
