"""`herald jobs` and `herald status`: find jobs, read one job's counts and recipients a page at a
time, and follow a job with a live progress bar until every recipient is final.

They read the store directly, through the same functions as the HTTP API (worker/jobs.py), so
`--json` prints what the API answers. Times are shown in the display zone (worker/display.py);
a time given without an offset is read in that zone too.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from datetime import datetime

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table

from worker.cli_output import console, print_json
from worker.cursors import read_job_cursor, read_recipient_cursor
from worker.display import display_optional, display_time
from worker.enums import FINAL, Channel, DeliveryStatus
from worker.errors import InvalidCursor, JobNotFound
from worker.jobs import (
    MESSAGES_MAX_LIMIT,
    RECIPIENTS_MAX_LIMIT,
    find_messages,
    in_status_order,
    read_job,
    read_recipients,
)
from worker.messages import normalise_mobile
from worker.schemas import JobPublic, JobSummary, RecipientPage
from worker.settings import get_settings
from worker.store import JobFilter, migrate, session_scope, status_counts_of_jobs

WATCH_POLL_S = 1.0
"""How often `--watch` reads the job's counts from the store."""
WATCH_TIMED_OUT = 124
"""`--watch`'s exit code when `--timeout` passed first (as timeout(1) exits)."""
STATUSES = click.Choice([s.value for s in DeliveryStatus])


def local_time(value: str | None) -> datetime | None:
    """An ISO time from the command line; without an offset it is read in the display zone."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=get_settings().display_zone)
    return moment


def counts_text(counts: Mapping[DeliveryStatus, int] | Mapping[str, int]) -> str:
    return ", ".join(f"{status} {number}" for status, number in counts.items()) or "-"


@click.command()
@click.option(
    "--status",
    "statuses",
    type=STATUSES,
    multiple=True,
    help="Jobs with a recipient in this status; repeatable.",
)
@click.option("--channel", type=click.Choice([c.value for c in Channel]), default=None)
@click.option("--vendor", type=click.Choice(["veesing", "chuangrui", "fivec"]), default=None)
@click.option("--phone", default=None, help="Jobs with this number among their recipients.")
@click.option("--created-from", default=None, help="Accepted at or after this ISO time.")
@click.option("--created-to", default=None, help="Accepted before this ISO time.")
@click.option("--idempotency-key", default=None, help="The job sent with this key.")
@click.option(
    "--limit", type=click.IntRange(1, MESSAGES_MAX_LIMIT), default=20, help="Jobs per page."
)
@click.option("--after", default=None, help="The cursor the previous page ended with.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
def jobs(
    statuses: tuple[str, ...],
    channel: str | None,
    vendor: str | None,
    phone: str | None,
    created_from: str | None,
    created_to: str | None,
    idempotency_key: str | None,
    limit: int,
    after: str | None,
    as_json: bool,
) -> None:
    """List recent jobs, newest first, with their counts by status and progress. Times
    without an offset are read in HERALD_DISPLAY_TZ."""
    try:
        number = normalise_mobile(phone) if phone is not None else None
        position = read_job_cursor(after) if after is not None else None
    except (ValueError, InvalidCursor) as exc:
        raise click.BadParameter(str(exc)) from None
    where = JobFilter(
        statuses=tuple(DeliveryStatus(s) for s in statuses),
        channel=Channel(channel) if channel else None,
        vendor=vendor,
        phone=number,
        created_from=local_time(created_from),
        created_to=local_time(created_to),
        idempotency_key=idempotency_key,
    )
    migrate.upgrade()
    with session_scope() as session:
        page = find_messages(session, where=where, after=position, limit=limit)
    if as_json:
        print_json(page)
        return
    out = console()
    if not page.jobs:
        out.print("no job")
        return
    table = Table("job", "accepted", "channel", "vendor", "status", "progress", "counts")
    for job in page.jobs:
        table.add_row(
            job.id,
            display_time(job.created_at),
            job.channel,
            job.vendor,
            job.status.value,
            f"{job.progress:.1f}%",
            counts_text(job.counts),
        )
    out.print(table)
    if page.next:
        out.print(f"more: the same command with --after {page.next}")


@click.command()
@click.argument("job_id")
@click.option("--recipients", "with_recipients", is_flag=True, help="List recipients too.")
@click.option(
    "--status",
    "statuses",
    type=STATUSES,
    multiple=True,
    help="With --recipients: only those in this status; repeatable.",
)
@click.option(
    "--limit",
    type=click.IntRange(1, RECIPIENTS_MAX_LIMIT),
    default=100,
    help="With --recipients: how many.",
)
@click.option("--after", default=None, help="With --recipients: the cursor of the last page.")
@click.option("--watch", is_flag=True, help="Follow the job until every recipient is final.")
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0),
    default=None,
    help=f"With --watch: give up after this many seconds (exit {WATCH_TIMED_OUT}).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
def status(
    job_id: str,
    with_recipients: bool,
    statuses: tuple[str, ...],
    limit: int,
    after: str | None,
    watch: bool,
    timeout_s: float | None,
    as_json: bool,
) -> None:
    """Print a job and its counts by status; its recipients only with --recipients, a page at
    a time. --watch shows a progress bar until every recipient is final (exit 0)."""
    if (statuses or after) and not with_recipients:
        raise click.UsageError("--status and --after choose recipients: add --recipients")
    try:
        after_id = read_recipient_cursor(after) if after is not None else None
    except InvalidCursor as exc:
        raise click.BadParameter(str(exc), param_hint="--after") from None
    migrate.upgrade()
    try:
        with session_scope() as session:
            job = read_job(session, job_id=job_id)
    except JobNotFound as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    finished = True
    if watch:
        finished = follow(job, timeout_s=timeout_s, out=console() if not as_json else None)
        with session_scope() as session:
            job = read_job(session, job_id=job_id)
    page = None
    if with_recipients:
        with session_scope() as session:
            page = read_recipients(
                session,
                job_id=job_id,
                statuses=tuple(DeliveryStatus(s) for s in statuses),
                after_id=after_id,
                limit=limit,
            )
    if as_json:
        print_json(page if page is not None else job)
    else:
        print_job(console(), job, page)
    if not finished:
        sys.exit(WATCH_TIMED_OUT)


def print_job(out: Console, job: JobSummary, page: RecipientPage | None) -> None:
    out.print(f"job {job.id}  {job.channel} via {job.vendor}  {job.status.value}")
    out.print(f"accepted  {display_time(job.created_at)}")
    if job.send_at:
        out.print(f"send at   {display_time(job.send_at)}")
    if job.expires_at:
        out.print(f"expires   {display_time(job.expires_at)}")
    final = sum(n for s, n in job.counts.items() if s in FINAL)
    out.print(f"progress  {job.progress:.1f}% final ({final} of {job.total})")
    for state, number in job.counts.items():
        out.print(f"  {state:<15}{number:>8}")
    if page is None:
        out.print(f"recipients: herald status {job.id} --recipients")
        return
    table = Table("phone", "status", "vendor status", "submitted", "reported", "error")
    for r in page.recipients:
        table.add_row(
            r.phone,
            r.status,
            r.vendor_status or "",
            display_optional(r.submitted_at, absent=""),
            display_optional(r.reported_at, absent=""),
            r.last_error or "",
        )
    out.print(table)
    if page.next:
        out.print(f"more: the same command with --after {page.next}")


def follow(job: JobPublic, *, timeout_s: float | None, out: Console | None) -> bool:
    """Read the job's counts every `WATCH_POLL_S` and show them on a progress bar (on `out`;
    none for `--json`) until every recipient is final (True) or `timeout_s` passed (False)."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    bar = Progress(
        TextColumn(f"job {job.id[:8]}"),
        BarColumn(),
        TaskProgressColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[counts]}", markup=False),
        console=out,
        disable=out is None,
    )
    with bar:
        task = bar.add_task("job", total=job.total, counts="")
        while True:
            with session_scope() as session:
                counts = status_counts_of_jobs(session, [job.id]).get(job.id, {})
            final = sum(n for s, n in counts.items() if s in FINAL)
            total = sum(counts.values())
            shown = counts_text(in_status_order(counts))
            bar.update(task, total=total, completed=final, counts=shown)
            if total and final == total:
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(WATCH_POLL_S)
