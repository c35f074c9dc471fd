"""Figure (2): single-recipient SMS jobs per second, end to end: `POST /v1/sms` over HTTP (a few
producers at a time) until every recipient is `submitted` at the vendor (the sandbox, whose
receipts flow back meanwhile)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from bench.figures import Figure
from bench.http_load import post_closed_loop
from bench.phones import Phones
from bench.stack import HeraldStack
from bench.store_reads import delivery_watermark, reached, status_summary, statuses
from bench.waiting import wait_for

KEY = "single_jobs"
ACCEPT_KEY = "single_accept"
PRODUCERS = 16
CONTENT = "【Herald】您的验证码是 4096"


def sms_requests(phones: list[str]) -> list[dict[str, object]]:
    return [{"json": {"to": [phone], "content": CONTENT}} for phone in phones]


def measure_single_jobs(
    stack: HeraldStack, phones: Phones, *, jobs: int, budget_s: float
) -> list[Figure]:
    store = stack.store.kind
    after = delivery_watermark(stack.engine)
    requests = sms_requests(phones.take(jobs))
    began_at, started = datetime.now(UTC), time.monotonic()
    answers = post_closed_loop(f"{stack.api_url}/v1/sms", requests, in_flight=PRODUCERS)
    accepted = answers.ok(202)
    wait_for(
        lambda: reached(stack.engine, after, "submitted_at")[0] >= accepted,
        started=started,
        budget_s=budget_s,
    )
    count, last = reached(stack.engine, after, "submitted_at")
    complete = count >= jobs
    seconds = (last - began_at).total_seconds() if last and complete else time.monotonic() - started
    return [
        Figure.rate(
            KEY,
            "(2) single-recipient SMS jobs/s, POST → submitted",
            count=count,
            of=jobs,
            seconds=seconds,
            unit="jobs/s",
            complete=complete,
            store=store,
            detail=f"{jobs:,} jobs, {PRODUCERS} producers; "
            f"{status_summary(statuses(stack.engine, after))}",
        ),
        Figure.rate(
            ACCEPT_KEY,
            "    HTTP accept alone (202 answers/s)",
            count=accepted,
            of=jobs,
            seconds=answers.last_answer - started,
            unit="jobs/s",
            complete=accepted == jobs,
            store=store,
            detail=answers.summary(),
        ),
    ]
