"""The producers' routes: accept SMS, MMS and voice jobs, read them back, cancel them.

A job is accepted by `worker.producer`, which commits it before ringing the broker, so these
routes hold no session of their own while accepting.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from worker.api import examples, upload
from worker.api.auth import ApiKeyName, require_api_key
from worker.api.deps import SessionDep
from worker.api.responses import error, errors
from worker.errors import FieldProblem, InvalidInput, JobNotCancellable, JobNotFound
from worker.jobs import cancel_job, read_job
from worker.messages import MmsRequest, PersonalisedMmsRequest, SmsRequest, VoiceRequest
from worker.producer import (
    Accepted,
    submit_mms,
    submit_personalised_mms,
    submit_sms,
    submit_sms_file,
    submit_voice,
)
from worker.schemas import EXAMPLE_JOB_ID, JobAccepted, JobPublic
from worker.store import utcnow

router = APIRouter(
    tags=["producers"], dependencies=[Depends(require_api_key)], responses=errors(401, 403, 503)
)
ACCEPTING = errors(413, 422)
"""What else a route that accepts a job may answer."""
JobIdInPath = Annotated[str, Path(description="The id answered when the job was accepted.")]
NO_SUCH_JOB: dict[int | str, dict[str, Any]] = {
    404: error("No job has this id.", f"no job {EXAMPLE_JOB_ID}")
}
ACCEPTED = (
    "The job is stored and its id is final; its recipients are sent by the workers. "
    "Header `Idempotent-Replayed: true` when an idempotency key returned an earlier job."
)


def accepted_response(accepted: Accepted) -> JSONResponse:
    body = JobAccepted(id=accepted.id, status=accepted.status).model_dump(mode="json")
    headers = {} if accepted.created else {"Idempotent-Replayed": "true"}
    return JSONResponse(body, status_code=status.HTTP_202_ACCEPTED, headers=headers)


@router.post(
    "/v1/sms",
    summary="Send an SMS",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobAccepted,
    response_description=ACCEPTED,
    responses=ACCEPTING,
)
def post_sms(
    request: Annotated[SmsRequest, Body(openapi_examples=examples.SMS)], caller: ApiKeyName
) -> JSONResponse:
    """Accept an SMS job: one content to one or more numbers. The content carries its
    【signature】 unless HERALD_SMS_SIGNATURE adds one. A repeated idempotency key answers the
    first job."""
    return accepted_response(submit_sms(request, api_key_name=caller))


@router.post(
    "/v1/sms/file",
    summary="Send an SMS to the numbers of a file",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobAccepted,
    response_description=ACCEPTED,
    responses={**ACCEPTING, **upload.UNSUPPORTED_MEDIA_TYPE},
    openapi_extra=upload.openapi(),
)
async def post_sms_file(request: Request, caller: ApiKeyName) -> JSONResponse:
    """Accept an SMS job whose numbers are a file: the body as `text/csv` with the options as
    query parameters, or a `multipart/form-data` upload (a `file` part, the options as form
    fields). A CSV's header names the phone column (phone, mobile, number, 手机号; else the
    first) and the columns whose values fill the content's `{placeholders}`; or one number a
    line. Duplicates are dropped; any bad line answers 422 naming it (`body, line, 17`) and the
    rule, every bad line at once, and nothing is stored."""
    received = await upload.read_upload(request)
    problems = (
        [FieldProblem("to", "the numbers are the file's")] if "to" in received.options else []
    )
    try:
        if problems:
            raise InvalidInput(problems)
        accepted, _ = await run_in_threadpool(
            submit_sms_file, received.data, api_key_name=caller, **received.options
        )
    except InvalidInput as exc:
        raise RequestValidationError(received.located(exc.problems)) from None
    return accepted_response(accepted)


@router.post(
    "/v1/mms",
    summary="Send an MMS",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobAccepted,
    response_description=ACCEPTED,
    responses=ACCEPTING,
)
def post_mms(
    request: Annotated[MmsRequest, Body(openapi_examples=examples.MMS)], caller: ApiKeyName
) -> JSONResponse:
    """Accept an MMS job: a title and frames to one or more numbers. The frames are checked
    against the vendor's limits first (types, count, size)."""
    return accepted_response(submit_mms(request, api_key_name=caller))


@router.post(
    "/v1/mms/personalised",
    summary="Send a personalised MMS (5C)",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobAccepted,
    response_description=ACCEPTED,
    responses=ACCEPTING,
)
def post_personalised_mms(
    request: Annotated[PersonalisedMmsRequest, Body(openapi_examples=examples.PERSONALISED_MMS)],
    caller: ApiKeyName,
) -> JSONResponse:
    """Accept a 5C personalised MMS: one picture and title, a text per number."""
    return accepted_response(submit_personalised_mms(request, api_key_name=caller))


@router.post(
    "/v1/voice",
    summary="Call with a voice message",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobAccepted,
    response_description=ACCEPTED,
    responses=ACCEPTING,
)
def post_voice(
    request: Annotated[VoiceRequest, Body(openapi_examples=examples.VOICE)], caller: ApiKeyName
) -> JSONResponse:
    """Accept a voice job: the template spoken to each number, one call each."""
    return accepted_response(submit_voice(request, api_key_name=caller))


@router.get(
    "/v1/messages/{job_id}",
    summary="Read a job",
    response_model=JobPublic,
    responses={**NO_SUCH_JOB, **errors(422)},
)
def get_message(job_id: JobIdInPath, session: SessionDep) -> JobPublic:
    """A job, its counts by status, its progress and its first 100 recipients in job order;
    when it has more, `recipients_next` pages on through `GET /v1/messages/{job_id}/recipients`.
    Times are ISO 8601 in UTC."""
    try:
        return read_job(session, job_id=job_id)
    except JobNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None


@router.post(
    "/v1/messages/{job_id}/cancel",
    summary="Cancel a job",
    response_model=JobAccepted,
    response_description="Every recipient not yet handed to the vendor is cancelled.",
    responses={
        **NO_SUCH_JOB,
        409: error(
            "Every recipient was already handed to the vendor or is final; nothing changed.",
            "no recipient is left to cancel",
        ),
        **errors(422),
    },
)
def post_cancel(job_id: JobIdInPath, session: SessionDep) -> JobAccepted:
    """Cancel every recipient not yet handed to the vendor; 409 when none is left to cancel."""
    try:
        cancelled = cancel_job(session, job_id=job_id, now=utcnow())
    except JobNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except JobNotCancellable as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return JobAccepted(id=cancelled.id, status=cancelled.status)
