"""`python -m bench --quick`: the bench starts its own stack (redis-server, store, sandbox, API,
Celery workers), measures, prints the table and keeps the run's JSON. The figures' values
depend on the machine; what is asserted is that every figure is there."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import PYTHON, need

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
LABELS = [
    "(1) plain Celery no-op tasks/s",
    "(2) single-recipient SMS jobs/s, POST → submitted",
    "(2)   ratio to (1)",
    "(3) created → submitted at 100 jobs/s offered, p50",
    "(3) created → submitted at 100 jobs/s offered, p99",
    "(4)   recipients/s to all submitted",
    "(4)   recipients/s to all reports applied",
    "(4)   last report applied after the last submission",
    "(5) receipt pushes applied/s (Veesing callback)",
    "(6) 5C report records applied/s (one page)",
    "(7) herald's limiter, numbers/s checked",
    "(7) `limits` (moving + fixed window), numbers/s",
    "(7) herald's limiter ÷ `limits`",
    "(8) peak RSS of one worker process",
]
KEYS = {
    "noop",
    "single_jobs",
    "single_ratio",
    "single_accept",
    "open_loop_p50",
    "open_loop_p99",
    "big_job_accept",
    "big_job_submitted",
    "big_job_reported",
    "big_job_report_lag",
    "receipt_pushes",
    "receipt_pushes_accept",
    "fivec_records",
    "limiter_herald",
    "limiter_limits",
    "limiter_ratio",
    "worker_rss",
}
TARGETED = {
    "single_ratio": "≥ 0.5× (1)",
    "open_loop_p99": "≤ 100 ms",
    "receipt_pushes": "≥ 3,000/s",
    "fivec_records": "≥ 50,000/s",
    "limiter_ratio": "≥ 20×",
    "worker_rss": "≤ 150 MB",
}


def test_quick_bench_prints_and_keeps_every_figure(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        need("redis-server")
    done = subprocess.run(
        [PYTHON, "-m", "bench", "--quick", "--store", "sqlite", "--results", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    table = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert table[0] == "| figure | sqlite | target |"
    rows = {line.split(" | ")[0].removeprefix("| "): line for line in table[2:]}
    for label in LABELS:
        assert label in rows, f"{label!r} missing from\n{done.stdout}"
        assert rows[label].split(" | ")[1].strip(), f"no value for {label!r}"

    (saved,) = tmp_path.glob("*.json")
    run = json.loads(saved.read_text())
    assert run["machine"]["cores"] >= 1
    assert run["machine"]["memory_gb"] > 0
    assert len(run["git"]["commit"]) == 40
    assert run["stores"] == ["sqlite"]
    figures = {f["key"]: f for f in run["figures"]}
    assert set(figures) == KEYS
    assert figures["noop"]["store"] is None
    assert figures["worker_rss"]["store"] == "sqlite"
    for key, target in TARGETED.items():
        assert figures[key]["target"] == target
        assert figures[key]["met"] in (True, False)
    assert f"saved {saved}" in done.stdout


def test_a_later_run_is_compared_with_an_earlier_one(tmp_path: Path) -> None:
    """`--compare FILE` prints each figure beside the same figure of FILE."""
    from bench.figures import Figure
    from bench.report import table

    before = [Figure("noop", "(1) plain Celery no-op tasks/s", 800.0, "tasks/s")]
    now = [Figure("noop", "(1) plain Celery no-op tasks/s", 900.0, "tasks/s")]
    assert "| 900 tasks/s (was 800 tasks/s) |" in table(now, ["sqlite"], before)
