"""Chaos suite set-up: sizes, one system per scenario, and the table printed at the end.

Small sizes run with the rest of the tests (CI); `CHAOS_FULL=1` runs the sizes of issue 9
(5,000 recipients and 20 kills, ...). `-m "not chaos"` leaves the suite out. The table is printed
after the run and written to tests/chaos/results/ (ignored by git), with each scenario's logs.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.ledger import Ledger, Row
from tests.chaos.loop import BackgroundLoop
from tests.chaos.system import ChaosSystem, build_system
from tests.conftest import make_postgres_database
from tests.support import need

FULL = os.environ.get("CHAOS_FULL") == "1"
RESULTS = Path(__file__).parent / "results"
ROWS: list[Row] = []


@dataclass(frozen=True)
class Sizes:
    kill_recipients: int
    kills: int
    recipients: int
    """Recipients of every other scenario..."""
    vendor_recipients: int
    """... but each vendor fault's."""
    per_job: int
    settle_s: float


SIZES = (
    Sizes(
        kill_recipients=5000,
        kills=20,
        recipients=1000,
        vendor_recipients=500,
        per_job=100,
        settle_s=600,
    )
    if FULL
    else Sizes(
        kill_recipients=200, kills=4, recipients=60, vendor_recipients=40, per_job=20, settle_s=90
    )
)


@pytest.fixture(scope="session")
def sizes() -> Sizes:
    return SIZES


@pytest.fixture(scope="session")
def chaos_loop() -> Iterator[BackgroundLoop]:
    if shutil.which("redis-server") is None:
        need("redis-server")
    loop = BackgroundLoop()
    yield loop
    loop.close()


SystemFactory = Callable[..., ChaosSystem]


@pytest.fixture(scope="module")
def start_system(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    chaos_loop: BackgroundLoop,
) -> Iterator[SystemFactory]:
    """Start a system (keyword arguments of `build_system`); a module's systems are stopped
    after its last test, their databases dropped and their logs kept under
    tests/chaos/results/logs/<module>/."""
    made: list[tuple[ChaosSystem, Callable[[], None]]] = []

    def start(**kwargs: Any) -> ChaosSystem:
        database = make_postgres_database()
        try:
            folder = tmp_path_factory.mktemp("chaos")
            system = build_system(folder, chaos_loop, database=database, **kwargs)
        except BaseException:
            database[1]()
            raise
        made.append((system, database[1]))
        return system

    yield start
    for n, (system, drop) in enumerate(made):
        try:
            system.close()
        finally:
            drop()
        keep = RESULTS / "logs" / f"{request.module.__name__.rsplit('.', 1)[-1]}-{n}"
        shutil.rmtree(keep, ignore_errors=True)
        shutil.copytree(system.folder / "logs", keep, dirs_exist_ok=True)


def record(ledger: Ledger, *, settled: bool = True) -> Row:
    """Tally a scenario's ledger into the table; returns its row."""
    row = ledger.tally(settled=settled)
    ROWS.append(row)
    return row


def verdict(row: Row, system: ChaosSystem) -> None:
    """The scenario's assertion: no loss, no unflagged duplicate, none of its own problems."""
    assert row.ok, f"{row.outcome}\n" + "\n".join(row.notes) + "\n" + system.logs_tail()


COLUMNS = ("scenario", "recipients", "delivered", "lost", "sent twice", "unknown", "outcome")


def table_lines(rows: list[Row]) -> list[str]:
    cells = [
        [
            r.scenario,
            str(r.recipients),
            str(r.delivered),
            str(r.lost),
            str(r.sent_twice),
            str(r.unknown),
            r.outcome,
        ]
        for r in rows
    ]
    widths = [max(len(c[i]) for c in [list(COLUMNS), *cells]) for i in range(len(COLUMNS))]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(COLUMNS, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in cells
    ]
    return lines


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not ROWS:
        return
    lines = table_lines(ROWS)
    terminalreporter.section(f"chaos table ({'full' if FULL else 'small'} sizes)")
    for line in lines:
        terminalreporter.write_line(line)
    for row in ROWS:
        for note in row.notes:
            terminalreporter.write_line(f"  {row.scenario}: {note}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "table.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "table.json").write_text(
        json.dumps([r.as_dict() for r in ROWS], ensure_ascii=False, indent=2) + "\n"
    )
    terminalreporter.write_line(f"written to {RESULTS / 'table.md'} and table.json")
