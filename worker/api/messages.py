"""The producers' routes that find messages: the jobs matching a filter, newest first, and a
job's recipients, a page at a time.

A *message* here is a job: one request, one content, its recipients. Both lists are paged with
an opaque cursor (`after`, answered as `next`), never with an offset, so a page costs the same
however deep it is and jobs accepted meanwhile neither repeat nor hide one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import AfterValidator, AwareDatetime, StringConstraints

from worker.api.auth import require_api_key
from worker.api.deps import SessionDep
from worker.api.responses import error, errors
from worker.cursors import read_job_cursor, read_recipient_cursor
from worker.enums import Channel, DeliveryStatus
from worker.errors import InvalidCursor, JobNotFound
from worker.jobs import MESSAGES_MAX_LIMIT, RECIPIENTS_MAX_LIMIT, find_messages, read_recipients
from worker.messages import normalise_mobile
from worker.schemas import EXAMPLE_JOB_ID, JobPage, RecipientPage
from worker.store import JobFilter

router = APIRouter(
    tags=["producers"],
    dependencies=[Depends(require_api_key)],
    responses=errors(401, 403, 422, 503),
)
TIMES = "ISO 8601 with an offset (`2026-11-11T10:00:00+08:00`); one without is refused."


def in_utc(moment: datetime) -> datetime:
    """An aware time the store can compare: in UTC, and within the years UTC has."""
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time is outside the years 1 to 9999 in UTC") from None


def a_job_cursor(cursor: str) -> str:
    """Refuse, as a 422 naming `after`, a cursor that is not one of the jobs list."""
    try:
        read_job_cursor(cursor)
    except InvalidCursor as exc:
        raise ValueError(f"{exc}: give the `next` of a page of this list") from None
    return cursor


def a_recipient_cursor(cursor: str) -> str:
    """Refuse, as a 422 naming `after`, a cursor that is not one of a recipients list."""
    try:
        read_recipient_cursor(cursor)
    except InvalidCursor as exc:
        raise ValueError(f"{exc}: give the `next` of a page of this list") from None
    return cursor


NoNul = StringConstraints(pattern=r"^[^\x00]*$")
Statuses = Annotated[
    list[DeliveryStatus] | None,
    Query(
        description="Only jobs with a recipient in this status (with `phone`: that number's "
        "recipient). Repeat it for any of several: `status=failed&status=undelivered`.",
    ),
]
UtcTime = Annotated[AwareDatetime, AfterValidator(in_utc)]
JobIdInPath = Annotated[str, Path(description="The id answered when the job was accepted.")]
NO_SUCH_JOB: dict[int | str, dict[str, Any]] = {
    404: error("No job has this id.", f"no job {EXAMPLE_JOB_ID}")
}


@router.get(
    "/v1/messages",
    summary="Find messages",
    response_model=JobPage,
    response_description="The jobs of this page with their counts by status and progress.",
)
def get_messages(
    session: SessionDep,
    status: Statuses = None,
    channel: Annotated[Channel | None, Query(description="Only this channel's jobs.")] = None,
    vendor: Annotated[
        Literal["veesing", "chuangrui", "fivec"] | None,
        Query(description="Only jobs sent through this vendor first (their `vendor`)."),
    ] = None,
    phone: Annotated[
        Annotated[str, AfterValidator(normalise_mobile)] | None,
        Query(description="Only jobs with this number among their recipients (+86 allowed)."),
    ] = None,
    created_from: Annotated[
        UtcTime | None,
        Query(description=f"Only jobs accepted at or after this time; {TIMES}"),
    ] = None,
    created_to: Annotated[
        UtcTime | None,
        Query(description=f"Only jobs accepted before this time; {TIMES}"),
    ] = None,
    idempotency_key: Annotated[
        Annotated[str, NoNul] | None,
        Query(max_length=128, description="Only the job sent with this idempotency key."),
    ] = None,
    limit: Annotated[
        int,
        Query(
            ge=1,
            le=MESSAGES_MAX_LIMIT,
            description=f"Jobs to return, 1 to {MESSAGES_MAX_LIMIT}.",
        ),
    ] = 50,
    after: Annotated[
        Annotated[str, AfterValidator(a_job_cursor)] | None,
        Query(description="The `next` of the previous page; absent for the first page."),
    ] = None,
) -> JobPage:
    """Jobs (one request each: its content and its recipients), newest first, each with its
    counts by status and its progress; the filters combine (all must hold). `status` and `phone`
    look at the recipients: a job matches when one of its recipients is in one of those
    statuses, with that number when both are given. Times in the answer are ISO 8601 in UTC.
    Page with `after`: each page's `next` gives the one after it, and null ends the list."""
    where = JobFilter(
        statuses=tuple(status or ()),
        channel=channel,
        vendor=vendor,
        phone=phone,
        created_from=created_from,
        created_to=created_to,
        idempotency_key=idempotency_key,
    )
    position = read_job_cursor(after) if after is not None else None
    return find_messages(session, where=where, after=position, limit=limit)


@router.get(
    "/v1/messages/{job_id}/recipients",
    summary="List a job's recipients",
    response_model=RecipientPage,
    response_description="This page of the job's recipients, in job order.",
    responses=NO_SUCH_JOB,
)
def get_recipients(
    job_id: JobIdInPath,
    session: SessionDep,
    status: Annotated[
        list[DeliveryStatus] | None,
        Query(description="Only recipients in this status; repeat it for any of several."),
    ] = None,
    limit: Annotated[
        int,
        Query(
            ge=1,
            le=RECIPIENTS_MAX_LIMIT,
            description=f"Recipients to return, 1 to {RECIPIENTS_MAX_LIMIT:_}.",
        ),
    ] = 100,
    after: Annotated[
        Annotated[str, AfterValidator(a_recipient_cursor)] | None,
        Query(
            description="The `next` of the previous page (or the job's `recipients_next`); "
            "absent for the first page."
        ),
    ] = None,
) -> RecipientPage:
    """A job's recipients in job order, a page at a time, with where each one is; `status`
    keeps those in the statuses given. Times are ISO 8601 in UTC."""
    after_id = read_recipient_cursor(after) if after is not None else None
    try:
        return read_recipients(
            session, job_id=job_id, statuses=tuple(status or ()), after_id=after_id, limit=limit
        )
    except JobNotFound as exc:
        raise HTTPException(404, str(exc)) from None
