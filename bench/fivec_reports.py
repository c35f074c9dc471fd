"""Figure (6): 5C report records applied per second. The deliveries are seeded as `submitted`
(bench.seed); the sandbox is given one report record for each, and herald's own 5C poll (beat,
every 3 s here) pulls them as one `recv` page, keeps it and applies it. The rate runs from
the moment the page was stored to the moment the last delivery was settled by it."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from bench.figures import Figure
from bench.phones import Phones
from bench.seed import seed_submitted
from bench.stack import HeraldStack
from bench.store_reads import (
    delivery_watermark,
    first_push_received,
    push_watermark,
    reports_applied,
    status_summary,
    statuses,
)
from bench.waiting import wait_for
from worker.enums import Channel

KEY = "fivec_records"
MSGID_DIGITS = 14
RECORDS_PER_MSGID = 1000


def measure_fivec_records(
    stack: HeraldStack, phones: Phones, *, records: int, budget_s: float
) -> Figure:
    store = stack.store.kind
    after, pushes_after = delivery_watermark(stack.engine), push_watermark(stack.engine)
    seeded = seed_submitted(
        stack.engine,
        vendor="fivec",
        channel=Channel.MMS,
        phones=phones.take(records),
        batch=RECORDS_PER_MSGID,
        ref_digits=MSGID_DIGITS,
    )
    queued_at, started = datetime.now(UTC), time.monotonic()
    stack.sandbox(
        "POST",
        "/_sandbox/fivec/reports",
        json={
            "reports": [
                {"msgid": one.ref, "mobile": one.phone, "state": "DELIVRD"} for one in seeded
            ]
        },
    )
    finished = wait_for(
        lambda: reports_applied(stack.engine, after)[0] >= records,
        started=started,
        budget_s=budget_s,
    )
    applied, last = reports_applied(stack.engine, after)
    page_at = first_push_received(stack.engine, pushes_after, "reports")
    if finished and last and page_at:
        seconds = (last - page_at).total_seconds()
        detail = f"page stored {(page_at - queued_at).total_seconds():.1f} s after it was queued"
    else:
        seconds = time.monotonic() - started
        detail = "page stored, not all applied" if page_at else "no page was stored"
    return Figure.rate(
        KEY,
        "(6) 5C report records applied/s (one page)",
        count=applied,
        of=records,
        seconds=seconds,
        unit="records/s",
        complete=finished is not None,
        store=store,
        detail=f"{records:,} records; {detail}; {status_summary(statuses(stack.engine, after))}",
    )
