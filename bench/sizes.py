"""How big each measurement is: the issue's sizes by default, small ones for `--quick`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    noop_tasks: int
    single_jobs: int
    open_loop_rate: float
    open_loop_seconds: float
    big_job: int
    pushes: int
    fivec_records: int
    limiter_numbers: int
    budget_s: float
    """The most one measurement may take; past it the figure is reported as incomplete."""
    drain_s: float
    """The most to wait, between measurements, for the last one's receipts to be applied."""


FULL = Sizes(
    noop_tasks=10_000,
    single_jobs=2_000,
    open_loop_rate=100,
    open_loop_seconds=30,
    big_job=100_000,
    pushes=10_000,
    fivec_records=100_000,
    limiter_numbers=100_000,
    budget_s=300,
    drain_s=120,
)
QUICK = Sizes(
    noop_tasks=200,
    single_jobs=10,
    open_loop_rate=100,
    open_loop_seconds=0.2,
    big_job=100,
    pushes=50,
    fivec_records=200,
    limiter_numbers=1_000,
    budget_s=10,
    drain_s=3,
)
