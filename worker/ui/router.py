"""The operator page, `/ui`: server-rendered HTML over the store, Redis and the settings.

Six pages share one layout (templates/base.html): jobs, one job's recipients, deferred recipients
by rule, vendors, replies and suppressions. Every list is paginated; phone numbers are masked
unless the address says `numbers=shown`; times are shown in HERALD_DISPLAY_TZ. The only script,
static/live.js, refreshes the parts of a page marked `data-live` while a job is under way. Nothing
is loaded from elsewhere, and the Content-Security-Policy says so to the browser.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Query, Request, status
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from worker.api.deps import SessionDep
from worker.display import display_optional
from worker.enums import DeliveryStatus, Purpose
from worker.settings import get_settings
from worker.store import Job, get_job, inbound_messages, suppressions, utcnow
from worker.store.overview import (
    DeferralRule,
    deferred_by_rule,
    deferred_page,
    job_counts,
    recent_jobs,
    recipients_page,
)
from worker.ui.auth import require_operator
from worker.ui.masking import mask_phone, mask_text
from worker.ui.vendors import breaker_redis, product_rows

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["thousands"] = lambda n: f"{n:,}"
templates.env.filters["when"] = partial(display_optional, absent="")

router = APIRouter(prefix="/ui", include_in_schema=False, dependencies=[Depends(require_operator)])

JOBS_PER_PAGE = 25
ROWS_PER_PAGE = 100
MAX_PAGE = 1_000_000
STATUS_ORDER = [
    DeliveryStatus.SCHEDULED,
    DeliveryStatus.QUEUED,
    DeliveryStatus.DEFERRED,
    DeliveryStatus.AWAITING_AUDIT,
    DeliveryStatus.CLAIMED,
    DeliveryStatus.SENDING,
    DeliveryStatus.SUBMITTED,
    DeliveryStatus.UNKNOWN,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.UNDELIVERED,
    DeliveryStatus.FAILED,
    DeliveryStatus.CANCELLED,
]
"""Statuses in the order a recipient passes through them, the order counts are shown in."""
RULE_LABELS = {
    DeferralRule.MINUTE: "Minute rule",
    DeferralRule.DAILY_CAP: "Daily cap",
    DeferralRule.PACING: "Pacing",
    DeferralRule.BACKOFF: "Backoff",
    DeferralRule.BREAKER: "Breaker open",
    DeferralRule.OTHER: "Other",
}
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

Page = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page number, from 1.")]
Numbers = Annotated[
    Literal["masked", "shown"], Query(description="`shown` shows phone numbers whole.")
]


Row = TypeVar("Row")


@dataclass(frozen=True)
class Pager:
    """Where a list is: `page` (from 1), whether a next page exists."""

    page: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.page > 1


def page_of(rows: list[Row], page: int, size: int) -> tuple[list[Row], Pager]:
    """The rows of a page fetched with one more than `size`, and its pager."""
    return rows[:size], Pager(page=page, has_next=len(rows) > size)


def render(
    request: Request,
    template: str,
    *,
    numbers: str = "masked",
    status_code: int = status.HTTP_200_OK,
    **context: Any,
) -> HTMLResponse:
    shown = numbers == "shown"
    response = templates.TemplateResponse(
        request,
        template,
        {
            "numbers_shown": shown,
            **number_formatters(shown),
            "url_with": lambda **changes: url_with(request, **changes),
            "display_tz": get_settings().display_tz,
            "now": utcnow(),
            "status_order": STATUS_ORDER,
            "rule_labels": RULE_LABELS,
            **context,
        },
        status_code=status_code,
    )
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def number_formatters(shown: bool) -> dict[str, Callable[[Any], str]]:
    """The templates' `phone` (a stored number) and `text` (free text that may hold numbers):
    masked unless the operator asked to see numbers."""

    def phone(number: str) -> str:
        return number if shown else mask_phone(number)

    def text(value: str | None) -> str:
        if value is None:
            return ""
        return value if shown else mask_text(value)

    return {"phone": phone, "text": text}


def url_with(request: Request, **changes: object) -> str:
    """This page's address with some query parameters changed (None removes one)."""
    query = dict(request.query_params)
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = str(value)
    return f"{request.url.path}?{urlencode(query)}" if query else request.url.path


@router.get("", response_class=HTMLResponse)
def jobs_page(
    request: Request, session: SessionDep, page: Page = 1, numbers: Numbers = "masked"
) -> HTMLResponse:
    """Recent jobs, newest first, each with its progress and its recipients by status."""
    rows = recent_jobs(session, limit=JOBS_PER_PAGE + 1, offset=(page - 1) * JOBS_PER_PAGE)
    jobs, pager = page_of(rows, page, JOBS_PER_PAGE)
    counts = job_counts(session, [job.id for job in jobs])
    return render(
        request,
        "jobs.html",
        numbers=numbers,
        section="jobs",
        jobs=jobs,
        counts=counts,
        pager=pager,
    )


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(
    request: Request,
    session: SessionDep,
    job_id: str,
    page: Page = 1,
    status_filter: Annotated[
        DeliveryStatus | None, Query(alias="status", description="Only recipients in this status.")
    ] = None,
    numbers: Numbers = "masked",
) -> HTMLResponse:
    """One job: its progress, its counts by status and a page of its recipients."""
    job = get_job(session, job_id=job_id)
    if job is None:
        return render(
            request,
            "message.html",
            numbers=numbers,
            section="jobs",
            title="No such job",
            message=f"No job has the id {job_id}.",
            status_code=status.HTTP_404_NOT_FOUND,
        )
    counts = job_counts(session, [job.id])[job.id]
    rows = recipients_page(
        session,
        job_id=job.id,
        status=status_filter,
        limit=ROWS_PER_PAGE + 1,
        offset=(page - 1) * ROWS_PER_PAGE,
    )
    recipients, pager = page_of(rows, page, ROWS_PER_PAGE)
    return render(
        request,
        "job.html",
        numbers=numbers,
        section="jobs",
        job=job,
        counts=counts,
        recipients=recipients,
        status_filter=status_filter,
        pager=pager,
        first_row=(page - 1) * ROWS_PER_PAGE + 1,
        live=counts.final < counts.total,
        content_hidden=holds_a_code(job),
    )


def holds_a_code(job: Job) -> bool:
    """Whether the job's content is a one-time code, which no page shows: a verification job, or
    a voice code (its content is the code itself)."""
    return job.purpose is Purpose.VERIFICATION or (job.payload or {}).get("kind") == "code"


@router.get("/deferred", response_class=HTMLResponse)
def deferred_view(
    request: Request,
    session: SessionDep,
    rule: Annotated[DeferralRule | None, Query(description="Only this rule's recipients.")] = None,
    page: Page = 1,
    numbers: Numbers = "masked",
) -> HTMLResponse:
    """Deferred recipients counted by the rule that holds them, then a page of them."""
    by_rule = deferred_by_rule(session)
    rows = deferred_page(
        session, rule=rule, limit=ROWS_PER_PAGE + 1, offset=(page - 1) * ROWS_PER_PAGE
    )
    deferred, pager = page_of(rows, page, ROWS_PER_PAGE)
    return render(
        request,
        "deferred.html",
        numbers=numbers,
        section="deferred",
        by_rule=by_rule,
        total=sum(by_rule.values()),
        rule=rule,
        deferred=deferred,
        pager=pager,
    )


@router.get("/vendors", response_class=HTMLResponse)
def vendors_view(
    request: Request, session: SessionDep, numbers: Numbers = "masked"
) -> HTMLResponse:
    """Each vendor product: configured, balance, breaker, today's sends against its caps."""
    rows = product_rows(session, now=utcnow(), client=breaker_redis())
    return render(request, "vendors.html", numbers=numbers, section="vendors", products=rows)


@router.get("/replies", response_class=HTMLResponse)
def replies_view(
    request: Request, session: SessionDep, page: Page = 1, numbers: Numbers = "masked"
) -> HTMLResponse:
    """Replies (MO) from handsets, newest first."""
    rows = inbound_messages(
        session, phone=None, limit=ROWS_PER_PAGE + 1, offset=(page - 1) * ROWS_PER_PAGE
    )
    replies, pager = page_of(rows, page, ROWS_PER_PAGE)
    return render(
        request, "replies.html", numbers=numbers, section="replies", replies=replies, pager=pager
    )


@router.get("/suppressions", response_class=HTMLResponse)
def suppressions_view(
    request: Request, session: SessionDep, page: Page = 1, numbers: Numbers = "masked"
) -> HTMLResponse:
    """Numbers that receive no marketing, oldest first."""
    rows = suppressions(session, limit=ROWS_PER_PAGE + 1, offset=(page - 1) * ROWS_PER_PAGE)
    suppressed, pager = page_of(rows, page, ROWS_PER_PAGE)
    return render(
        request,
        "suppressions.html",
        numbers=numbers,
        section="suppressions",
        suppressed=suppressed,
        pager=pager,
    )


def install(api: FastAPI) -> None:
    """Serve the operator page from `api`: its routes, and its stylesheet and script."""
    api.include_router(router)
    api.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="ui-static")
