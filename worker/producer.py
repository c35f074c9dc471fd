"""The producer API: store the job first, then ring the broker (docs/design.md, promise 1).

A job id is returned only after the job is committed. Enqueueing is a doorbell: if Redis is
down, the job is still accepted and the sweeper enqueues it later (`HERALD_REQUEUE_AFTER_S`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import pydantic

from worker.enums import Channel, JobStatus, Purpose
from worker.errors import FieldProblem, InvalidInput
from worker.messages import (
    MmsRequest,
    PersonalisedMmsRequest,
    SmsRecipient,
    SmsRequest,
    VoiceRequest,
    distinct_numbers,
    has_signature,
    no_emoji,
)
from worker.mms import MMS_VALIDATORS, Frame, Media, Mms, mms_to_payload
from worker.names import SEND_JOB_TASK
from worker.placeholders import placeholders, render
from worker.recipients_file import RecipientsFile, read_recipients
from worker.settings import MMS_VENDORS, SMS_VENDORS, VOICE_VENDORS, get_settings, vendor_configured
from worker.store import (
    NewJob,
    create_job,
    initial_status,
    job_status_of,
    session_scope,
    status_counts_of_jobs,
    utcnow,
)
from worker.vendors.fivec import batch_problems
from worker.vendors.veesing_voice import voice_problems

log = logging.getLogger(__name__)

Request = TypeVar("Request", bound=pydantic.BaseModel)


@dataclass(frozen=True)
class Accepted:
    """A stored job: `created` is False when an idempotency key returned an earlier job."""

    id: str
    status: JobStatus
    created: bool


def submit_sms(
    request: SmsRequest | None = None, /, *, api_key_name: str | None = None, **fields: Any
) -> Accepted:
    """Accept an SMS job: `submit_sms(to=[...], content="【签名】...")` or with an `SmsRequest`.

    `api_key_name` is recorded on the job as who asked (the API passes its caller's key name).
    Raises `InvalidInput` naming each broken rule; then nothing is stored or queued.
    """
    if request is None:
        request = parse_request(SmsRequest, fields)
    return accept(sms_job(request, api_key_name=api_key_name))


def submit_sms_file(
    data: bytes, /, *, api_key_name: str | None = None, **fields: Any
) -> tuple[Accepted, RecipientsFile]:
    """Accept an SMS job whose recipients are a file (`worker.recipients_file`): `fields` are
    an SMS request's but `to`. Every bad line and every broken rule is reported at once, each
    recipient's by its line (`line.17.values.name`); then nothing is stored or queued."""
    try:
        recipients = read_recipients(data)
    except InvalidInput as exc:
        problems = exc.problems
        recipients = None
    else:
        problems = []
    try:
        request = parse_request(SmsRequest, {**fields, "to": recipients.to() if recipients else []})
        job = sms_job(request, api_key_name=api_key_name)
    except InvalidInput as exc:
        problems += file_problems(exc.problems, recipients, fields.get("content"))
    raise_if(problems)
    assert recipients is not None
    return accept(job), recipients


def file_problems(
    problems: list[FieldProblem], recipients: RecipientsFile | None, content: object
) -> list[FieldProblem]:
    """The problems of a request built from a file, in the file's terms. A placeholder that no
    column names is one problem of the content, not one on every line."""
    if recipients is None:  # the file's own problems are reported; its empty `to` is no news
        return [p for p in problems if not p.field.startswith("to")]
    unnamed = [n for n in placeholders(str(content or "")) if n not in recipients.columns]
    said = {f"no value for the placeholder {{{name}}}" for name in unnamed}
    columns = ", ".join(recipients.columns) or "none but the number"
    return [
        *(
            FieldProblem(
                "content",
                f"the placeholder {{{name}}} names no column of the file (its columns: {columns})",
            )
            for name in unnamed
        ),
        *(recipients.in_file_terms(p) for p in problems if p.rule not in said),
    ]


def sms_job(request: SmsRequest, *, api_key_name: str | None) -> NewJob:
    """The job an SMS request makes, once it keeps every rule; `InvalidInput` otherwise."""
    settings = get_settings()
    content = with_signature(request.content, settings.sms_signature)
    vendor = request.vendor or settings.default_sms_vendor
    phones = request.phones()
    problems = common_problems(phones, vendor, SMS_VENDORS)
    texts: dict[str, str] | None = None
    if placeholders(content):
        texts, personal_problems = personalised_texts(content, request.to)
        problems += personal_problems
    else:
        problems += [FieldProblem("content", rule) for rule in sms_text_rules(content)]
    callback_url = webhook_address(request.callback_url, problems)
    raise_if(problems)
    return NewJob(
        channel=Channel.SMS,
        vendor=vendor,
        purpose=request.purpose,
        content=content,
        texts=texts,
        on_daily_cap=request.on_daily_cap,
        allow_failover=request.allow_failover,
        phones=phones,
        send_at=request.send_at,
        expires_at=request.expires_at,
        idempotency_key=request.idempotency_key,
        api_key_name=api_key_name,
        callback_url=callback_url,
    )


def personalised_texts(
    template: str, recipients: Sequence[SmsRecipient]
) -> tuple[dict[str, str], list[FieldProblem]]:
    """Each recipient's text, rendered from the template and its values, and every problem:
    a placeholder without a value (`to[3].values.name`), a value with emoji, a rendered text
    that breaks an SMS rule (`to[3]`)."""
    names = placeholders(template)
    texts: dict[str, str] = {}
    problems: list[FieldProblem] = []
    for index, recipient in enumerate(recipients):
        where = f"to[{index}]"
        missing = [name for name in names if not recipient.values.get(name)]
        problems += [
            FieldProblem(f"{where}.values.{name}", f"no value for the placeholder {{{name}}}")
            for name in missing
        ]
        if missing:
            continue
        for name in names:
            try:
                no_emoji(recipient.values[name])
            except ValueError as exc:
                problems.append(FieldProblem(f"{where}.values.{name}", str(exc)))
        text = render(template, recipient.values)
        problems += [FieldProblem(where, f"its text: {rule}") for rule in sms_text_rules(text)]
        texts[recipient.phone] = text
    return texts, problems


def sms_text_rules(text: str) -> list[str]:
    """The rules an SMS text breaks, of those every text keeps: the length cap (after
    rendering) and a 【signature】 at one end."""
    max_chars = get_settings().sms_max_chars
    rules: list[str] = []
    if len(text) > max_chars:
        rules.append(f"at most {max_chars} characters, got {len(text)}")
    if not has_signature(text):
        rules.append(
            "must begin or end with a 【signature】 of 2-16 characters "
            "(or set HERALD_SMS_SIGNATURE)"
        )
    return rules


def submit_mms(
    request: MmsRequest | None = None, /, *, api_key_name: str | None = None, **fields: Any
) -> Accepted:
    """Accept an MMS job, checked against the chosen vendor's document before it is stored."""
    if request is None:
        request = parse_request(MmsRequest, fields)
    vendor = request.vendor or get_settings().default_mms_vendor
    problems = common_problems(request.to, vendor, MMS_VENDORS)
    mms = Mms(
        request.title,
        [
            Frame(
                seconds=frame.seconds,
                text=frame.text,
                media=None if frame.media is None else Media(frame.media.type, frame.media.data()),
            )
            for frame in request.frames
        ],
    )
    if vendor in MMS_VALIDATORS:
        try:
            MMS_VALIDATORS[vendor](mms)
        except InvalidInput as exc:
            problems += exc.problems
    callback_url = webhook_address(request.callback_url, problems)
    raise_if(problems)
    return accept(
        NewJob(
            channel=Channel.MMS,
            vendor=vendor,
            purpose=request.purpose,
            content=request.title,
            payload=mms_to_payload(mms),
            on_daily_cap=request.on_daily_cap,
            allow_failover=request.allow_failover,
            phones=request.to,
            send_at=request.send_at,
            expires_at=request.expires_at,
            idempotency_key=request.idempotency_key,
            api_key_name=api_key_name,
            callback_url=callback_url,
        )
    )


def submit_voice(
    request: VoiceRequest | None = None, /, *, api_key_name: str | None = None, **fields: Any
) -> Accepted:
    """Accept a voice job: one call per number, the template's variables checked by kind."""
    if request is None:
        request = parse_request(VoiceRequest, fields)
    vendor = "veesing"
    problems = common_problems(request.to, vendor, VOICE_VENDORS)
    problems += [
        p
        for p in voice_problems(request.kind, request.to[0], request.variables)
        if p.field != "phone"
    ]
    callback_url = webhook_address(request.callback_url, problems)
    raise_if(problems)
    default_purpose = Purpose.VERIFICATION if request.kind == "code" else Purpose.NOTIFICATION
    return accept(
        NewJob(
            channel=Channel.VOICE,
            vendor=vendor,
            purpose=request.purpose or default_purpose,
            content=request.variables,
            payload={
                "template_id": request.template_id,
                "variables": request.variables,
                "kind": request.kind,
            },
            phones=request.to,
            send_at=request.send_at,
            expires_at=request.expires_at,
            idempotency_key=request.idempotency_key,
            api_key_name=api_key_name,
            callback_url=callback_url,
        )
    )


def submit_personalised_mms(
    request: PersonalisedMmsRequest | None = None,
    /,
    *,
    api_key_name: str | None = None,
    **fields: Any,
) -> Accepted:
    """Accept a 5C personalised MMS: one picture and title, each number with its own text."""
    if request is None:
        request = parse_request(PersonalisedMmsRequest, fields)
    phones = [r.to for r in request.recipients]
    problems = common_problems(phones, "fivec", MMS_VENDORS)
    try:
        distinct_numbers(phones)
    except ValueError as exc:
        problems.append(FieldProblem("recipients", str(exc)))
    picture = Media(request.picture.type, request.picture.data())
    texts = {r.to: r.text for r in request.recipients}
    problems += batch_problems(request.title, picture, texts)
    callback_url = webhook_address(request.callback_url, problems)
    raise_if(problems)
    return accept(
        NewJob(
            channel=Channel.MMS,
            vendor="fivec",
            purpose=request.purpose,
            content=request.title,
            payload={
                "title": request.title,
                "picture": {"type": request.picture.type, "base64": request.picture.base64},
            },
            texts=texts,
            phones=phones,
            send_at=request.send_at,
            expires_at=request.expires_at,
            idempotency_key=request.idempotency_key,
            api_key_name=api_key_name,
            callback_url=callback_url,
        )
    )


def common_problems(phones: list[str], vendor: str, vendors: tuple[str, ...]) -> list[FieldProblem]:
    """Rules of every channel: how many numbers, and a vendor that serves it and is set up."""
    settings = get_settings()
    problems: list[FieldProblem] = []
    if len(phones) > settings.max_recipients:
        problems.append(FieldProblem("to", f"at most {settings.max_recipients} numbers per job"))
    if vendor not in vendors:
        problems.append(FieldProblem("vendor", f"must be one of {', '.join(vendors)}"))
    elif not vendor_configured(vendor):
        problems.append(FieldProblem("vendor", f"{vendor} has no credentials configured"))
    return problems


def webhook_address(requested: str | None, problems: list[FieldProblem]) -> str | None:
    """Where the job's status changes go: its own `callback_url`, else HERALD_WEBHOOK_URL.

    A job that asks for webhooks while no secret is set is refused (with a problem added):
    an unsigned webhook would let anyone who can reach the receiver forge a status.
    """
    settings = get_settings()
    if requested is not None and settings.webhook_secret is None:
        problems.append(
            FieldProblem("callback_url", "webhooks are off: HERALD_WEBHOOK_SECRET is not set")
        )
    return requested or settings.webhook_url


def raise_if(problems: list[FieldProblem]) -> None:
    if problems:
        raise InvalidInput(problems)


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
    """Commit the job, then enqueue its send task unless it waits for its send_at.

    A new job's status follows from its deliveries' one starting status; only an earlier job
    returned for its idempotency key is counted in the store.
    """
    now = now or utcnow()
    with session_scope() as session:
        job, created = create_job(session, new=new, now=now)
        statuses = (
            {initial_status(new, now=now)}
            if created
            else set(status_counts_of_jobs(session, [job.id]).get(job.id, {}))
        )
        status = job_status_of(statuses)
    if created and status is JobStatus.QUEUED:
        enqueue_send(job.id, runs=send_runs_for(len(new.phones)))
    return Accepted(id=job.id, status=status, created=created)


def send_runs_for(recipients: int) -> int:
    """How many send task runs a new job starts with: one per batch, at most HERALD_SEND_FANOUT,
    so that a big job is shared by the fleet's workers from its first second."""
    settings = get_settings()
    batches = -(-recipients // settings.batch_size)
    return max(1, min(batches, settings.send_fanout))


def enqueue_send(job_id: str, *, runs: int = 1) -> None:
    """Ring the doorbell for one job (`runs` times: as many task runs may work it at once). A
    broker failure is logged, not raised: the job is safe, and the sweeper enqueues it."""
    from worker.app import app

    try:
        for _ in range(runs):
            app.send_task(SEND_JOB_TASK, args=[job_id])
    except Exception:  # kombu raises several unrelated types for an unreachable broker
        log.warning("could not enqueue job %s; the sweeper will enqueue it", job_id, exc_info=True)
