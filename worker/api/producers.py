"""The producers' routes: accept SMS, MMS and voice jobs, read them back, cancel them.

A job is accepted by `worker.producer`, which commits it before ringing the broker, so these
routes hold no session of their own while accepting.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.responses import JSONResponse

from worker.api.auth import ApiKeyName, require_api_key
from worker.api.deps import SessionDep
from worker.errors import JobNotCancellable, JobNotFound
from worker.jobs import cancel_job, read_job
from worker.messages import MmsRequest, PersonalisedMmsRequest, SmsRequest, VoiceRequest
from worker.producer import (
    Accepted,
    submit_mms,
    submit_personalised_mms,
    submit_sms,
    submit_voice,
)
from worker.schemas import JobAccepted, JobPublic
from worker.store import utcnow

router = APIRouter(dependencies=[Depends(require_api_key)])


def accepted_response(accepted: Accepted) -> JSONResponse:
    body = JobAccepted(id=accepted.id, status=accepted.status).model_dump(mode="json")
    headers = {} if accepted.created else {"Idempotent-Replayed": "true"}
    return JSONResponse(body, status_code=status.HTTP_202_ACCEPTED, headers=headers)


@router.post(
    "/v1/sms",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobAccepted,
    responses={422: {"description": "A field breaks a rule; nothing was stored."}},
)
def post_sms(request: SmsRequest, caller: ApiKeyName) -> JSONResponse:
    """Accept an SMS job. A repeated idempotency key answers the first job."""
    return accepted_response(submit_sms(request, api_key_name=caller))


@router.post("/v1/mms", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted)
def post_mms(request: MmsRequest, caller: ApiKeyName) -> JSONResponse:
    """Accept an MMS job; its frames are checked against the vendor's limits first."""
    return accepted_response(submit_mms(request, api_key_name=caller))


@router.post(
    "/v1/mms/personalised", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted
)
def post_personalised_mms(request: PersonalisedMmsRequest, caller: ApiKeyName) -> JSONResponse:
    """Accept a 5C personalised MMS: one picture and title, a text per number."""
    return accepted_response(submit_personalised_mms(request, api_key_name=caller))


@router.post("/v1/voice", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted)
def post_voice(request: VoiceRequest, caller: ApiKeyName) -> JSONResponse:
    """Accept a voice job: the template spoken to each number, one call each."""
    return accepted_response(submit_voice(request, api_key_name=caller))


@router.get("/v1/messages/{job_id}", response_model=JobPublic)
def get_message(job_id: str, session: SessionDep) -> JobPublic:
    try:
        return read_job(session, job_id=job_id)
    except JobNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None


@router.post("/v1/messages/{job_id}/cancel", response_model=JobAccepted)
def post_cancel(job_id: str, session: SessionDep) -> JobAccepted:
    """Cancel every recipient not yet handed to the vendor; 409 when none is left to cancel."""
    try:
        cancelled = cancel_job(session, job_id=job_id, now=utcnow())
    except JobNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except JobNotCancellable as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return JobAccepted(id=cancelled.id, status=cancelled.status)
