"""One bench run: the plain-Celery yardstick and the limiter comparison on the private Redis,
then, for each store, a fresh herald stack and its measurements in an order that lets each
start quiet: the small jobs first, the 100,000-recipient job last (its receipts take longest).
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable

from bench.big_job import measure_big_job
from bench.celery_noop import measure_celery_noop
from bench.figures import Figure
from bench.fivec_reports import measure_fivec_records
from bench.limiter_vs_limits import measure_limiter_vs_limits
from bench.open_loop import measure_open_loop
from bench.phones import Phones
from bench.receipt_pushes import measure_receipt_pushes
from bench.rss import PeakRss
from bench.single_jobs import measure_single_jobs
from bench.sizes import Sizes
from bench.stack import HeraldStack, StoreKind, herald_stack, private_redis, run_folder
from bench.store_reads import statuses
from bench.waiting import wait_for

Say = Callable[[str], None]


def say_on_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_bench(
    stores: list[StoreKind], sizes: Sizes, *, concurrency: int, say: Say = say_on_stderr
) -> list[Figure]:
    folder = run_folder()
    phones = Phones()
    say(f"bench: processes and logs in {folder}")
    try:
        with private_redis(folder) as redis:
            say(f"(1) plain Celery: {sizes.noop_tasks:,} no-op tasks")
            noop = measure_celery_noop(
                redis,
                folder,
                tasks=sizes.noop_tasks,
                concurrency=concurrency,
                budget_s=sizes.budget_s,
            )
            say(f"(7) limiters: {sizes.limiter_numbers:,} numbers each")
            limiters = measure_limiter_vs_limits(redis, phones, numbers=sizes.limiter_numbers)
            figures = [noop, *limiters]
            for kind in stores:
                say(f"{kind}: starting sandbox, API, worker and beat")
                with herald_stack(kind, redis, folder / kind, concurrency=concurrency) as stack:
                    figures += measure_store(stack, phones, sizes, noop, say)
    except BaseException:
        say(f"bench: stopped; the logs are kept in {folder}/")
        raise
    shutil.rmtree(folder, ignore_errors=True)
    return figures


def measure_store(
    stack: HeraldStack, phones: Phones, sizes: Sizes, noop: Figure, say: Say
) -> list[Figure]:
    kind = stack.store.kind
    assert stack.worker.process is not None
    figures: list[Figure] = []
    with PeakRss(stack.worker.process.pid) as rss:
        say(f"(2) {kind}: {sizes.single_jobs:,} single-recipient jobs")
        single = measure_single_jobs(stack, phones, jobs=sizes.single_jobs, budget_s=sizes.budget_s)
        figures += [single[0], ratio(single[0], noop), *single[1:]]
        drain(stack, sizes, say)
        say(f"(3) {kind}: {sizes.open_loop_rate:g} jobs/s for {sizes.open_loop_seconds:g} s")
        figures += measure_open_loop(
            stack,
            phones,
            per_second=sizes.open_loop_rate,
            seconds=sizes.open_loop_seconds,
            budget_s=sizes.budget_s,
        )
        drain(stack, sizes, say)
        say(f"(5) {kind}: {sizes.pushes:,} receipt pushes")
        figures += measure_receipt_pushes(
            stack, phones, pushes=sizes.pushes, budget_s=sizes.budget_s
        )
        drain(stack, sizes, say)
        say(f"(6) {kind}: {sizes.fivec_records:,} 5C report records")
        figures.append(
            measure_fivec_records(
                stack, phones, records=sizes.fivec_records, budget_s=sizes.budget_s
            )
        )
        drain(stack, sizes, say)
        say(f"(4) {kind}: one job of {sizes.big_job:,} recipients")
        figures += measure_big_job(stack, phones, recipients=sizes.big_job, budget_s=sizes.budget_s)
    figures.append(rss.figure(kind))
    return figures


def ratio(single: Figure, noop: Figure) -> Figure:
    value = single.value / noop.value if single.value and noop.value else None
    return Figure(
        "single_ratio",
        "(2)   ratio to (1)",
        value,
        "×",
        single.store,
        complete=single.complete and noop.complete,
    )


def drain(stack: HeraldStack, sizes: Sizes, say: Say) -> None:
    """Wait (at most `sizes.drain_s`) until no recipient waits for its receipt, so the next
    measurement does not pay for the last one's."""

    def quiet() -> bool:
        return statuses(stack.engine, 0)["submitted"] == 0

    if wait_for(quiet, started=time.monotonic(), budget_s=sizes.drain_s) is None:
        waiting = statuses(stack.engine, 0)["submitted"]
        say(f"    {waiting:,} recipients still wait for receipts; going on")
