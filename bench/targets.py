"""The targets of issue 10 ("Throughput at campaign scale"), on a 2-core machine, printed beside
each figure with whether it was met."""

from __future__ import annotations

from collections.abc import Callable

from bench.figures import Figure

Check = Callable[[float], bool]

TARGETS: dict[str, tuple[str, Check]] = {
    "single_ratio": ("≥ 0.5× (1)", lambda v: v >= 0.5),
    "open_loop_p99": ("≤ 100 ms", lambda v: v <= 100),
    "big_job_accept": ("≤ 3 s", lambda v: v <= 3),
    "big_job_report_lag": ("≤ 60 s", lambda v: v <= 60),
    "receipt_pushes": ("≥ 3,000/s", lambda v: v >= 3_000),
    "fivec_records": ("≥ 50,000/s", lambda v: v >= 50_000),
    "limiter_ratio": ("≥ 20×", lambda v: v >= 20),
    "worker_rss": ("≤ 150 MB", lambda v: v <= 150),
}
BIG_JOB_SUBMITTED: dict[str, tuple[str, Check]] = {
    "postgresql": ("≥ 25,000/s", lambda v: v >= 25_000),
    "sqlite": ("≥ 10,000/s", lambda v: v >= 10_000),
}


def with_targets(figures: list[Figure]) -> list[Figure]:
    for figure in figures:
        target = TARGETS.get(figure.key)
        if figure.key == "big_job_submitted" and figure.store in BIG_JOB_SUBMITTED:
            target = BIG_JOB_SUBMITTED[figure.store]
        if target is not None:
            text, check = target
            figure.with_target(text, None if figure.value is None else check(figure.value))
            if figure.value is None:
                figure.met = False
    return figures
