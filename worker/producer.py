"""The producer API: store the job first, then ring the broker (DESIGN contract 1).

A job id is returned only after the job is committed. Enqueueing is a doorbell: if Redis is
down, the job is still accepted and the sweeper enqueues it later (`HERALD_REQUEUE_AFTER_S`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import pydantic

from worker.errors import FieldProblem, InvalidInput
from worker.messages import SmsRequest, has_signature
from worker.settings import SMS_VENDORS, get_settings, vendor_configured
from worker.store import (
    Channel,
    JobStatus,
    NewJob,
    create_job,
    deliveries_of,
    job_status,
    session_scope,
    utcnow,
)

log = logging.getLogger(__name__)

SEND_TASK = "herald.send_job"
Request = TypeVar("Request", bound=pydantic.BaseModel)


@dataclass(frozen=True)
class Accepted:
    """A stored job: `created` is False when an idempotency key returned an earlier job."""

    id: str
    status: JobStatus
    created: bool


def submit_sms(request: SmsRequest | None = None, /, **fields: Any) -> Accepted:
    """Accept an SMS job: `submit_sms(to=[...], content="【签名】...")` or with an `SmsRequest`.

    Raises `InvalidInput` naming each broken rule; then nothing is stored or queued.
    """
    if request is None:
        request = parse_request(SmsRequest, fields)
    settings = get_settings()
    content = with_signature(request.content, settings.sms_signature)
    problems: list[FieldProblem] = []
    if len(content) > settings.sms_max_chars:
        problems.append(
            FieldProblem(
                "content", f"at most {settings.sms_max_chars} characters, got {len(content)}"
            )
        )
    if len(request.to) > settings.max_recipients:
        problems.append(FieldProblem("to", f"at most {settings.max_recipients} numbers per job"))
    vendor = request.vendor or settings.default_sms_vendor
    if vendor not in SMS_VENDORS:
        problems.append(FieldProblem("vendor", f"must be one of {', '.join(SMS_VENDORS)}"))
    if vendor in SMS_VENDORS and not vendor_configured(vendor):
        problems.append(FieldProblem("vendor", f"{vendor} has no credentials configured"))
    if not has_signature(content):
        problems.append(
            FieldProblem(
                "content",
                "must begin or end with a 【signature】 of 2-16 characters "
                "(or set HERALD_SMS_SIGNATURE)",
            )
        )
    if problems:
        raise InvalidInput(problems)
    return accept(
        NewJob(
            channel=Channel.SMS,
            vendor=vendor,
            purpose=request.purpose,
            content=content,
            phones=request.to,
            send_at=request.send_at,
            expires_at=request.expires_at,
            idempotency_key=request.idempotency_key,
        )
    )


def parse_request(model: type[Request], fields: dict[str, Any]) -> Request:
    """Validate keyword arguments into a request model, as `InvalidInput` on failure."""
    try:
        return model.model_validate(fields)
    except pydantic.ValidationError as exc:
        raise InvalidInput(
            [
                FieldProblem(
                    ".".join(str(part) for part in error["loc"]),
                    error["msg"].removeprefix("Value error, "),
                )
                for error in exc.errors()
            ]
        ) from None


def with_signature(content: str, signature: str | None) -> str:
    if signature and not has_signature(content):
        return f"【{signature.strip('【】')}】{content}"
    return content


def accept(new: NewJob, *, now: datetime | None = None) -> Accepted:
    """Commit the job, then enqueue its send task unless it waits for its send_at."""
    now = now or utcnow()
    with session_scope() as session:
        job, created = create_job(session, new=new, now=now)
        status = job_status(deliveries_of(session, job_id=job.id))
    if created and status is JobStatus.QUEUED:
        enqueue_send(job.id)
    return Accepted(id=job.id, status=status, created=created)


def enqueue_send(job_id: str) -> None:
    """Ring the doorbell for one job. A broker failure is logged, not raised: the job is safe."""
    from worker.app import app

    try:
        app.send_task(SEND_TASK, args=[job_id])
    except Exception:  # kombu raises several unrelated types for an unreachable broker
        log.warning("could not enqueue job %s; the sweeper will enqueue it", job_id, exc_info=True)
