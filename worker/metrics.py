"""What only the worker sees, as Prometheus metrics: vendor call latency and retries.

The worker's pool processes come and go, so these metrics use prometheus_client's multiprocess
mode: the worker's main process sets `PROMETHEUS_MULTIPROC_DIR` (HERALD_METRICS_DIR, by default
`<HERALD_DATA_DIR>/metrics`) before its pool starts (`enable_multiprocess`, from the
`worker_init` signal), every process writes its figures to its own files there, and the API's
`GET /metrics` adds them up when it shares that folder (one machine: `herald up`, or a volume
shared by the containers; worker/api/metrics.py). What the store and Redis know is read by the
API itself at scrape time and needs none of this.

Metrics are made on first use, so a process that never enabled multiprocess mode (the API, a
test) keeps them in memory and writes no file.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from prometheus_client import Counter, Histogram, multiprocess, values

from worker.settings import Settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0)


def metrics_dir(settings: Settings) -> Path:
    return (settings.metrics_dir or settings.data_dir / "metrics").resolve()


def enable_multiprocess(settings: Settings) -> Path:
    """From now on this process and the ones it forks write their metrics to the shared
    folder."""
    folder = metrics_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(folder)
    # prometheus_client reads the variable when it is imported: read it again
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    return folder


def process_ended(pid: int) -> None:
    """A pool process ended: its live gauges no longer count (counters and histograms stay)."""
    folder = os.environ.get(MULTIPROC_ENV)
    if folder:
        multiprocess.mark_process_dead(pid, folder)  # type: ignore[no-untyped-call]


@lru_cache(maxsize=1)
def vendor_call_seconds() -> Histogram:
    return Histogram(
        "herald_vendor_call_seconds",
        "How long one vendor call took, by vendor and outcome class.",
        ["vendor", "outcome"],
        buckets=LATENCY_BUCKETS,
    )


@lru_cache(maxsize=1)
def retries_total() -> Counter:
    return Counter(
        "herald_retries",
        "Recipients deferred for another attempt, by the error class that made them wait.",
        ["error_class"],
    )


def outcome_class(outcome: object) -> str:
    """`accepted`, or the error's class name (a small fixed set: worker/errors.py)."""
    name = type(outcome).__name__
    return "accepted" if name == "Accepted" else name


def observe_vendor_call(vendor: str, outcome: object, seconds: float) -> None:
    vendor_call_seconds().labels(vendor=vendor, outcome=outcome_class(outcome)).observe(seconds)


def count_retries(error: object, recipients: int) -> None:
    if recipients > 0:
        retries_total().labels(error_class=type(error).__name__).inc(recipients)
