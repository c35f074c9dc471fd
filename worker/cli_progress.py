"""A job followed on the terminal: a progress bar (rich) until every recipient is final.

The bar counts final recipients (delivered, undelivered, failed, cancelled) against the job's
size and names how many are in each status, from one GROUP BY a poll (`status_counts`). It is
drawn on stderr, so that stdout keeps only the job id for scripts. When stderr is no terminal,
rich draws the bar once, when it ends.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from worker.enums import FINAL, DeliveryStatus
from worker.store import session_scope, status_counts

POLL_S = 1.0


def follow_job(job_id: str, *, poll_s: float = POLL_S) -> dict[DeliveryStatus, int]:
    """Draw the job's progress until every recipient is final; the counts by status then.
    Ctrl-C stops following (KeyboardInterrupt), not the job."""
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[statuses]}"),
        console=Console(stderr=True),
    )
    with progress:
        bar = progress.add_task(f"job {job_id[:8]}", total=None, statuses="")
        while True:
            with session_scope() as session:
                counts = status_counts(session, job_id=job_id)
            total = sum(counts.values())
            final = sum(counts.get(status, 0) for status in FINAL)
            progress.update(bar, total=total, completed=final, statuses=in_words(counts))
            if final >= total:
                return counts
            time.sleep(poll_s)


def in_words(counts: Mapping[DeliveryStatus, int]) -> str:
    """`delivered 4990 · submitted 10`: each status with recipients, in the machine's order."""
    return " · ".join(
        f"{status.value} {counts[status]}" for status in DeliveryStatus if counts.get(status)
    )
