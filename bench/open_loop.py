"""Figure (3): latency from a job's creation to its recipient's `submitted`, for single-recipient
SMS jobs offered at a fixed rate (open loop: each POST leaves on its schedule however long the
others take), with the sandbox's receipts flowing back meanwhile.

A recipient not submitted when the budget ends counts as slower than every one that was, so a
system that cannot keep up shows it in its p99 rather than hiding it."""

from __future__ import annotations

import math
import time

from bench.figures import Figure
from bench.http_load import post_open_loop
from bench.phones import Phones
from bench.single_jobs import sms_requests
from bench.stack import HeraldStack
from bench.store_reads import (
    created_to_submitted_s,
    delivery_watermark,
    reached,
    status_summary,
    statuses,
)
from bench.waiting import wait_for

P50_KEY, P99_KEY = "open_loop_p50", "open_loop_p99"


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (`share` in 0..1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def measure_open_loop(
    stack: HeraldStack, phones: Phones, *, per_second: float, seconds: float, budget_s: float
) -> list[Figure]:
    store = stack.store.kind
    jobs = max(1, round(per_second * seconds))
    after = delivery_watermark(stack.engine)
    started = time.monotonic()
    answers = post_open_loop(
        f"{stack.api_url}/v1/sms", sms_requests(phones.take(jobs)), per_second=per_second
    )
    offered_for = answers.last_answer - started
    accepted = answers.ok(202)
    finished = wait_for(
        lambda: reached(stack.engine, after, "submitted_at")[0] >= accepted,
        started=started,
        budget_s=budget_s,
    )
    latencies = created_to_submitted_s(stack.engine, after)
    missing = accepted - len(latencies)
    padded = latencies + [math.inf] * missing
    detail = (
        f"{jobs:,} jobs offered at {per_second:g}/s ({answers.summary()} in {offered_for:.1f} s); "
        f"{status_summary(statuses(stack.engine, after))}"
    )
    figures = []
    for key, label, share in (
        (P50_KEY, "(3) created → submitted at {rate:g} jobs/s offered, p50", 0.5),
        (P99_KEY, "(3) created → submitted at {rate:g} jobs/s offered, p99", 0.99),
    ):
        value = percentile(padded, share) if padded else math.inf
        figures.append(
            Figure(
                key,
                label.format(rate=per_second),
                None if math.isinf(value) else value * 1000,
                "ms",
                store,
                complete=finished is not None and not math.isinf(value),
                detail=detail,
            )
        )
    return figures
