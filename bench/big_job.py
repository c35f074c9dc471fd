"""Figure (4): one SMS job of many recipients (100,000 by default), accepted through
`POST /v1/sms`: recipients per second until all are `submitted`, and until all their receipts
(pushed by the sandbox to the API's callback URL) are applied; and how long after the last
submission the last receipt was applied."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx

from bench.figures import Figure
from bench.phones import Phones
from bench.single_jobs import CONTENT
from bench.stack import HeraldStack
from bench.store_reads import delivery_watermark, reached, reports_applied, status_summary, statuses
from bench.waiting import wait_for

SUBMITTED_KEY, REPORTED_KEY, LAG_KEY, ACCEPT_KEY = (
    "big_job_submitted",
    "big_job_reported",
    "big_job_report_lag",
    "big_job_accept",
)


def measure_big_job(
    stack: HeraldStack, phones: Phones, *, recipients: int, budget_s: float
) -> list[Figure]:
    store = stack.store.kind
    after = delivery_watermark(stack.engine)
    body = {"to": phones.take(recipients), "content": CONTENT}
    began_at, started = datetime.now(UTC), time.monotonic()
    try:
        response: httpx.Response | None = httpx.post(
            f"{stack.api_url}/v1/sms", json=body, timeout=budget_s
        )
    except httpx.TimeoutException:
        response = None  # the API may still commit it: the figures below say how far it got
    accepted_s = time.monotonic() - started
    if response is not None and response.status_code != 202:
        refused = f"HTTP {response.status_code} {response.text[:500]}"
        raise RuntimeError(f"the job was refused: {refused}")
    submitted_by = wait_for(
        lambda: reached(stack.engine, after, "submitted_at")[0] >= recipients,
        started=started,
        budget_s=budget_s,
    )
    submitted, last_submitted = reached(stack.engine, after, "submitted_at")
    reported_by = wait_for(
        lambda: reports_applied(stack.engine, after)[0] >= recipients,
        started=started,
        budget_s=budget_s,
    )
    reported, last_reported = reports_applied(stack.engine, after)
    now = time.monotonic()

    def seconds(last: datetime | None, done: float | None) -> float:
        return (last - began_at).total_seconds() if last and done else now - started

    summary = status_summary(statuses(stack.engine, after))
    lag = (
        (last_reported - last_submitted).total_seconds()
        if reported_by and last_reported and last_submitted
        else None
    )
    return [
        Figure(
            ACCEPT_KEY,
            f"(4) {recipients:,}-recipient job: POST answered",
            accepted_s,
            "s",
            store,
            complete=response is not None,
            detail="" if response is not None else f"no answer within {budget_s:.0f} s",
        ),
        Figure.rate(
            SUBMITTED_KEY,
            "(4)   recipients/s to all submitted",
            count=submitted,
            of=recipients,
            seconds=seconds(last_submitted, submitted_by),
            unit="recipients/s",
            complete=submitted_by is not None,
            store=store,
            detail=summary,
        ),
        Figure.rate(
            REPORTED_KEY,
            "(4)   recipients/s to all reports applied",
            count=reported,
            of=recipients,
            seconds=seconds(last_reported, reported_by),
            unit="recipients/s",
            complete=reported_by is not None,
            store=store,
            detail=summary,
        ),
        Figure(
            LAG_KEY,
            "(4)   last report applied after the last submission",
            lag,
            "s",
            store,
            complete=lag is not None,
            detail=f"{reported:,} of {recipients:,} reports applied",
        ),
    ]
