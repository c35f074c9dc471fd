"""The bench's output: the table (figures side by side, one column per store, the target and
whether it was met), the run's JSON in `bench/results/` and the comparison with an earlier
run's JSON."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from bench.figures import Figure

RESULTS = Path(__file__).parent / "results"
ROW_ORDER = [
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
]
"""The table's rows in the issue's order (1) to (8); a figure not listed comes last."""
SAME = "″"
"""In a store's column, a figure that uses no store: the value is the first column's."""


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "load_average": [round(load, 1) for load in os.getloadavg()],
        "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def git_commit() -> dict[str, Any]:
    root = Path(__file__).parent.parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=False
        ).stdout.strip()

    return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(git("status", "--porcelain"))}


def header(run: dict[str, Any]) -> str:
    box = run["machine"]
    commit = run["git"]["commit"] or "unknown"
    dirty = " (with uncommitted changes)" if run["git"]["dirty"] else ""
    load = box.get("load_average") or ["?"]
    return (
        f"herald bench, {run['when']}, {box['cores']} cores, {box['memory_gb']} GB, "
        f"load average {load[0]} at the start, "
        f"commit {commit[:10]}{dirty}, sizes: {run['size']}"
    )


def mark(figure: Figure) -> str:
    return {True: " ✓", False: " ✗", None: ""}[figure.met]


def table(figures: list[Figure], stores: list[str], before: list[Figure] | None = None) -> str:
    """A Markdown table: a row per figure, a column per store."""
    earlier = {(f.key, f.store): f for f in before or []}
    rows: dict[str, dict[str | None, Figure]] = {}
    ranked = sorted(
        figures, key=lambda f: ROW_ORDER.index(f.key) if f.key in ROW_ORDER else len(ROW_ORDER)
    )
    for figure in ranked:
        rows.setdefault(figure.key, {})[figure.store] = figure
    head = ["figure", *stores, "target"]
    lines = [head, ["---"] * len(head)]
    for by_store in rows.values():
        first = next(iter(by_store.values()))
        cells = [first.label]
        for index, store in enumerate(stores):
            shown = by_store.get(store) or by_store.get(None)
            if shown is None:
                cells.append("")
            elif shown.store is None and index > 0:
                cells.append(SAME)
            else:
                cell = shown.shown() + mark(shown)
                was = earlier.get((shown.key, shown.store))
                if was is not None:
                    cell += f" (was {was.shown()})"
                cells.append(cell)
        cells.append(first.target)
        lines.append(cells)
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def notes(figures: list[Figure]) -> str:
    """What each figure is made of (sizes, statuses reached), one line each."""
    return "\n".join(
        f"  {figure.key}{f' [{figure.store}]' if figure.store else ''}: {figure.detail}"
        for figure in figures
        if figure.detail
    )


def save(run: dict[str, Any], folder: Path = RESULTS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromisoformat(run["when"]).strftime("%Y%m%dT%H%M%SZ")
    path = folder / f"{stamp}.json"
    path.write_text(json.dumps(run, indent=2, ensure_ascii=False) + "\n")
    return path


def load_figures(path: Path) -> tuple[dict[str, Any], list[Figure]]:
    run = json.loads(path.read_text())
    return run, [Figure.from_json(f) for f in run["figures"]]
