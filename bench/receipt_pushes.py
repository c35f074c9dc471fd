"""Figure (5): Veesing SMS receipt pushes applied per second. The deliveries they report on are
seeded as `submitted` (bench.seed); the bench then POSTs one receipt per delivery to the API's
Veesing callback route, as the vendor does, a few at a time, and waits until every delivery is
settled by its receipt."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from bench.figures import Figure
from bench.http_load import post_closed_loop
from bench.phones import Phones
from bench.seed import seed_submitted
from bench.stack import HeraldStack
from bench.store_reads import delivery_watermark, reports_applied, status_summary, statuses
from bench.waiting import wait_for
from worker.enums import Channel

KEY, ACCEPT_KEY = "receipt_pushes", "receipt_pushes_accept"
SENDERS = 32
"""Pushes in flight at once, as a vendor's push workers would send them."""
SHANGHAI = ZoneInfo("Asia/Shanghai")


def measure_receipt_pushes(
    stack: HeraldStack, phones: Phones, *, pushes: int, budget_s: float
) -> list[Figure]:
    store = stack.store.kind
    after = delivery_watermark(stack.engine)
    seeded = seed_submitted(
        stack.engine,
        vendor="veesing",
        channel=Channel.SMS,
        phones=phones.take(pushes),
        batch=100,
        ref_digits=9,
    )
    received = datetime.now(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    requests = [
        {
            "data": {
                "mobile": one.phone,
                "taskid": one.ref,
                "status": "1",
                "code": "DELIVRD",
                "receivetime": received,
            }
        }
        for one in seeded
    ]
    began_at, started = datetime.now(UTC), time.monotonic()
    answers = post_closed_loop(stack.callback_url("sms"), requests, in_flight=SENDERS)
    finished = wait_for(
        lambda: reports_applied(stack.engine, after)[0] >= pushes,
        started=started,
        budget_s=budget_s,
    )
    applied, last = reports_applied(stack.engine, after)
    seconds = (last - began_at).total_seconds() if finished and last else time.monotonic() - started
    return [
        Figure.rate(
            KEY,
            "(5) receipt pushes applied/s (Veesing callback)",
            count=applied,
            of=pushes,
            seconds=seconds,
            unit="pushes/s",
            complete=finished is not None,
            store=store,
            detail=f"{pushes:,} pushes, {SENDERS} at a time; "
            f"{status_summary(statuses(stack.engine, after))}",
        ),
        Figure.rate(
            ACCEPT_KEY,
            "    HTTP answers alone",
            count=answers.ok(200),
            of=pushes,
            seconds=answers.last_answer - started,
            unit="pushes/s",
            complete=answers.ok(200) == pushes,
            store=store,
            detail=answers.summary(),
        ),
    ]
