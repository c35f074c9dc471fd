"""`python -m bench [--quick] [--store sqlite|postgresql|both] [--compare FILE]`: start a stack,
measure, print the table, keep the run's JSON in bench/results/."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.report import git_commit, header, load_figures, machine, notes, save, table
from bench.run import run_bench
from bench.sizes import FULL, QUICK
from bench.stack import StoreKind, postgres_answers
from bench.targets import with_targets

SIZE_FLAGS = {
    "noop_tasks": int,
    "single_jobs": int,
    "open_loop_rate": float,
    "open_loop_seconds": float,
    "big_job": int,
    "pushes": int,
    "fivec_records": int,
    "limiter_numbers": int,
    "budget_s": float,
    "drain_s": float,
}


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(
        prog="python -m bench",
        description="Start a private herald stack and measure it beside plain Celery.",
    )
    parse.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parse.add_argument(
        "--store",
        choices=["auto", "sqlite", "postgresql", "both"],
        default="auto",
        help="auto: PostgreSQL at 127.0.0.1:5432 when one answers, else SQLite",
    )
    parse.add_argument(
        "--concurrency", type=int, default=4, help="processes of each Celery worker (4)"
    )
    parse.add_argument("--compare", type=Path, metavar="FILE", help="an earlier run's JSON")
    parse.add_argument(
        "--results", type=Path, default=None, help="folder for the JSON (bench/results)"
    )
    for name, kind in SIZE_FLAGS.items():
        parse.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None)
    return parse


def chosen_stores(choice: str) -> list[StoreKind]:
    if choice == "sqlite":
        return ["sqlite"]
    if choice == "postgresql" or (choice == "auto" and postgres_answers()):
        return ["postgresql"]
    if choice == "both":
        return ["sqlite", "postgresql"]
    return ["sqlite"]


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    sizes = QUICK if args.quick else FULL
    sizes = dataclasses.replace(
        sizes, **{n: getattr(args, n) for n in SIZE_FLAGS if getattr(args, n) is not None}
    )
    stores = chosen_stores(args.store)
    if "postgresql" in stores and not postgres_answers():
        print("no PostgreSQL answers at 127.0.0.1:5432", file=sys.stderr)
        return 2
    before = load_figures(args.compare) if args.compare else None
    when, box, commit = datetime.now(UTC).replace(microsecond=0), machine(), git_commit()
    figures = with_targets(run_bench(stores, sizes, concurrency=args.concurrency))
    run: dict[str, Any] = {
        "when": when.isoformat(),
        "machine": box,
        "git": commit,
        "size": "quick" if args.quick else "full",
        "sizes": dataclasses.asdict(sizes),
        "concurrency": args.concurrency,
        "stores": list(stores),
        "figures": [f.to_json() for f in figures],
    }
    saved = save(run, args.results) if args.results else save(run)
    print(header(run))
    if before is not None:
        print(f"compared with {args.compare}: {header(before[0])}")
    print()
    print(table(figures, list(stores), before[1] if before else None))
    print()
    print("details:")
    print(notes(figures))
    print(f"\nsaved {saved}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
