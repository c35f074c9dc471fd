"""The `herald` command line: run the local system, send, follow and cancel jobs."""

from __future__ import annotations

import base64
import json
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import click
from rich.console import Console

from worker.cli_admin import db, keys
from worker.cli_jobs import follow, jobs, status
from worker.cli_output import print_json
from worker.clients import fivec_adapter
from worker.display import display_optional, display_time
from worker.errors import (
    ConfigurationError,
    InvalidInput,
    JobNotCancellable,
    JobNotFound,
    VendorError,
)
from worker.jobs import cancel_job, read_job
from worker.names import POLL_BALANCES_TASK
from worker.producer import Accepted, submit_mms, submit_sms, submit_sms_file, submit_voice
from worker.recipients_file import describe
from worker.schemas import BalanceRead, InboundPublic, JobAccepted, VendorReport
from worker.settings import PRODUCTS, get_settings, vendor_configured
from worker.store import (
    balances,
    inbound_messages,
    migrate,
    session_scope,
    utcnow,
)
from worker.store.db import is_store_outage, store_unavailable

CLI_CALLER = "cli"
"""What a job sent with `herald send` records as its caller (jobs.api_key_name)."""


class HeraldGroup(click.Group):
    """Commands whose store is unreachable say so in one line and exit 75 (EX_TEMPFAIL: try
    again), instead of a driver's traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if not is_store_outage(exc):
                raise
            click.echo(f"error: {store_unavailable(exc)}; try again shortly", err=True)
            sys.exit(75)


@click.group(cls=HeraldGroup)
def main() -> None:
    """herald: SMS, MMS and voice delivery through Chinese vendors."""


@main.command()
def up() -> None:
    """Run worker, beat, API, sandbox and Flower in this terminal; Ctrl-C stops them all."""
    from worker.up import run_local_system

    sys.exit(run_local_system(click.echo))


@main.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.argument("options", nargs=-1, type=click.UNPROCESSED)
def bench(options: tuple[str, ...]) -> None:
    """Measure herald's throughput beside plain Celery (`python -m bench`, same options; a
    clone of the repository only: the bench is not installed with herald)."""
    import subprocess

    clone = Path(__file__).resolve().parent.parent
    if not (clone / "bench" / "__main__.py").is_file():
        raise click.ClickException(f"no bench/ beside {clone / 'worker'}: run it from a clone")
    sys.exit(subprocess.call([sys.executable, "-m", "bench", *options], cwd=clone))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
def health(as_json: bool) -> None:
    """Check what `/readyz` checks (store, Redis, a worker consuming, beat ticking); exit 1
    when one fails."""
    from worker.health import as_json as checks_json
    from worker.health import readiness

    checks = readiness()
    if as_json:
        click.echo(json.dumps(checks_json(checks), indent=2))
    else:
        for check in checks:
            click.echo(f"{check.name:<7} {'ok' if check.ok else 'FAIL':<5} {check.detail}")
    if not all(c.ok for c in checks):
        sys.exit(1)


@main.group()
def send() -> None:
    """Accept a job (stored first, then queued)."""


@send.command("sms")
@click.option("--to", "to", multiple=True, help="A mobile number; repeatable.")
@click.option(
    "--to-file",
    type=click.File("rb"),
    default=None,
    help="The numbers from a file, - for stdin: a CSV whose header names a phone column and "
    "the placeholders' columns, or one number a line.",
)
@click.option(
    "--content",
    required=True,
    help="The text, with its 【signature】; {name} is replaced by each recipient's value of name.",
)
@click.option("--vendor", default=None, help="An SMS vendor; default HERALD_DEFAULT_SMS_VENDOR.")
@click.option(
    "--purpose",
    type=click.Choice(["marketing", "notification", "verification"]),
    default=None,
    help="marketing (default; never to opted-out numbers), notification or verification.",
)
@click.option("--send-at", default=None, help="ISO time with offset: send then, not before.")
@click.option("--expires-at", default=None, help="ISO time with offset: never send after it.")
@click.option("--idempotency-key", default=None, help="The same key returns the first job.")
@click.option(
    "--wait/--no-wait",
    default=None,
    help="Follow the job with a progress bar until every recipient is final "
    "(the default with --to-file).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
def send_sms(
    to: tuple[str, ...],
    to_file: BinaryIO | None,
    content: str,
    vendor: str | None,
    purpose: str | None,
    send_at: str | None,
    expires_at: str | None,
    idempotency_key: str | None,
    wait: bool | None,
    as_json: bool,
) -> None:
    """Send one SMS content to one or more numbers, or to the numbers of a file; prints the
    job id. A file with a bad line queues nothing: every bad line is listed."""
    if bool(to) == (to_file is not None):
        raise click.UsageError("give either --to (repeatable) or --to-file")
    migrate.upgrade()
    fields: dict[str, Any] = {
        "content": content,
        "vendor": vendor,
        "purpose": purpose,
        "send_at": send_at,
        "expires_at": expires_at,
        "idempotency_key": idempotency_key,
    }
    if to_file is None:
        accepted = accept_or_exit(submit_sms, {"to": list(to), **fields})
    else:
        accepted = accept_file_or_exit(to_file.read(), fields)
    print_accepted(accepted, as_json)
    if wait if wait is not None else to_file is not None:
        follow_or_exit(accepted.id)


def accept_file_or_exit(data: bytes, fields: dict[str, Any]) -> Accepted:
    """Accept a job from a file's bytes, or list every problem (each bad line by its number,
    then how many) and exit 2 with nothing queued."""
    given = {k: v for k, v in fields.items() if v is not None}
    try:
        accepted, recipients = submit_sms_file(data, api_key_name=CLI_CALLER, **given)
    except InvalidInput as exc:
        for problem in exc.problems:
            click.echo(describe(problem), err=True)
        bad_lines = {p.field.split(".")[1] for p in exc.problems if p.field.startswith("line.")}
        others = sum(1 for p in exc.problems if not p.field.startswith("line."))
        summary = [counted(len(bad_lines), "bad line")] if bad_lines else []
        summary += [counted(others, "other problem")] if others else []
        click.echo(f"{', '.join(summary)}; nothing was queued", err=True)
        sys.exit(2)
    dropped = recipients.duplicates
    said = f" ({counted(dropped, 'duplicate')} dropped)" if dropped else ""
    click.echo(f"{counted(len(recipients.recipients), 'recipient')}{said}", err=True)
    return accepted


def counted(count: int, thing: str) -> str:
    return f"{count} {thing}" if count == 1 else f"{count} {thing}s"


def follow_or_exit(job_id: str) -> None:
    """The job's progress bar on stderr (stdout keeps only the job id, for scripts) until every
    recipient is final."""
    with session_scope() as session:
        job = read_job(session, job_id=job_id)
    try:
        follow(job, timeout_s=None, out=Console(stderr=True))
    except KeyboardInterrupt:
        click.echo(f"stopped following; job {job_id} goes on (herald status {job_id})", err=True)
        sys.exit(130)


@send.command("mms")
@click.option("--to", "to", multiple=True, required=True, help="A mobile number; repeatable.")
@click.option("--title", required=True, help="The MMS title.")
@click.option(
    "--frame",
    "frames",
    multiple=True,
    required=True,
    help="SECONDS|TEXT|MEDIA_PATH, text or media may be empty; repeatable, in order.",
)
@click.option("--vendor", type=click.Choice(["veesing", "fivec"]), default=None)
@click.option(
    "--purpose", type=click.Choice(["marketing", "notification", "verification"]), default=None
)
@click.option("--idempotency-key", default=None, help="The same key returns the first job.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
def send_mms(
    to: tuple[str, ...],
    title: str,
    frames: tuple[str, ...],
    vendor: str | None,
    purpose: str | None,
    idempotency_key: str | None,
    as_json: bool,
) -> None:
    """Send one MMS to one or more numbers; media files are read from their paths."""
    migrate.upgrade()
    fields = {
        "to": list(to),
        "title": title,
        "frames": [frame_from_option(frame) for frame in frames],
        "vendor": vendor,
        "purpose": purpose,
        "idempotency_key": idempotency_key,
    }
    print_accepted(accept_or_exit(submit_mms, fields), as_json)


def frame_from_option(option: str) -> dict[str, Any]:
    seconds, _, rest = option.partition("|")
    text, _, path = rest.partition("|")
    frame: dict[str, Any] = {"seconds": int(seconds or 5), "text": text or None}
    if path:
        media = Path(path)
        try:
            data = media.read_bytes()
        except OSError as exc:
            raise click.BadParameter(f"cannot read {path}: {exc.strerror}") from None
        kind = media.suffix.lstrip(".").lower()
        frame["media"] = {"type": kind, "base64": base64.b64encode(data).decode()}
    return frame


@send.command("voice")
@click.option("--to", "to", multiple=True, required=True, help="A mobile number; repeatable.")
@click.option("--template", "template_id", required=True, help="An approved template id.")
@click.option("--variables", required=True, help="A code (2-8 digits) or a notice's text.")
@click.option("--kind", type=click.Choice(["code", "notice"]), required=True)
@click.option("--idempotency-key", default=None, help="The same key returns the first job.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
def send_voice(
    to: tuple[str, ...],
    template_id: str,
    variables: str,
    kind: str,
    idempotency_key: str | None,
    as_json: bool,
) -> None:
    """Speak a voice template to each number (one call each)."""
    migrate.upgrade()
    fields = {
        "to": list(to),
        "template_id": template_id,
        "variables": variables,
        "kind": kind,
        "idempotency_key": idempotency_key,
    }
    print_accepted(accept_or_exit(submit_voice, fields), as_json)


def accept_or_exit(submit: Callable[..., Accepted], fields: dict[str, Any]) -> Accepted:
    try:
        return submit(api_key_name=CLI_CALLER, **{k: v for k, v in fields.items() if v is not None})
    except InvalidInput as exc:
        for problem in exc.problems:
            click.echo(f"error: {problem.field}: {problem.rule}", err=True)
        sys.exit(2)


def print_accepted(accepted: Accepted, as_json: bool) -> None:
    if as_json:
        print_json(JobAccepted(id=accepted.id, status=accepted.status))
    else:
        click.echo(accepted.id)


@main.command()
@click.argument("job_id")
def cancel(job_id: str) -> None:
    """Cancel the recipients of a job that have not reached the vendor."""
    migrate.upgrade()
    try:
        with session_scope() as session:
            cancelled = cancel_job(session, job_id=job_id, now=utcnow())
    except JobNotFound as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except JobNotCancellable:
        click.echo("nothing to cancel: every recipient already reached the vendor", err=True)
        sys.exit(1)
    click.echo(f"cancelled {cancelled.recipients} recipients")


@main.command()
@click.argument("vendor", required=False)
@click.option("--wait", "wait_s", default=15.0, help="Seconds to wait for a worker's fresh read.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
def balance(vendor: str | None, wait_s: float, as_json: bool) -> None:
    """Ask a worker to read every configured product's balance, then print them."""
    migrate.upgrade()
    started = utcnow()
    from worker.app import app

    app.send_task(POLL_BALANCES_TASK, kwargs={"force": True})
    deadline = time.monotonic() + wait_s
    while True:
        with session_scope() as session:
            rows = balances(session)
        wanted = {
            p: rows.get(p)
            for p in PRODUCTS
            if vendor_configured(p.split(":")[0]) and (vendor is None or p.startswith(vendor + ":"))
        }
        fresh = all(row is not None and row.checked_at >= started for row in wanted.values())
        if fresh or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    report = {
        product: BalanceRead(
            balance=row.balance if row else None,
            checked_at=row.checked_at if row else None,
            error=row.error if row else None,
            fresh=bool(row and row.checked_at >= started),
        )
        for product, row in wanted.items()
    }
    if as_json:
        print_json(report)
        return
    for product, entry in report.items():
        state = entry.error or entry.balance or "never read"
        stale = "" if entry.fresh else "  (no fresh read: is a worker running?)"
        click.echo(f"{product:<14} {state}{stale}")


@main.command()
@click.option("--phone", default=None, help="Only this number's messages.")
@click.option("--limit", default=20, help="How many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
def inbound(phone: str | None, limit: int, as_json: bool) -> None:
    """Print replies and MO messages from handsets, newest first."""
    migrate.upgrade()
    with session_scope() as session:
        rows = inbound_messages(session, phone=phone, limit=limit)
    if as_json:
        print_json([InboundPublic.model_validate(r, from_attributes=True) for r in rows])
        return
    for r in rows:
        click.echo(
            f"{display_time(r.received_at or r.stored_at)}  {r.phone}  via {r.vendor}: {r.content}"
        )


@main.group()
def reports() -> None:
    """Ask a vendor about delivery reports."""


@reports.command("fivec")
@click.option("--mobile", "mobiles", multiple=True, required=True, help="A number; repeatable.")
@click.option("--from", "start", required=True, help="ISO time with offset.")
@click.option("--to", "end", required=True, help="ISO time with offset.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
def reports_fivec(mobiles: tuple[str, ...], start: str, end: str, as_json: bool) -> None:
    """5C's reports of some numbers between two times (section 5.1.3 of its document)."""
    try:
        since, until = datetime.fromisoformat(start), datetime.fromisoformat(end)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if since.tzinfo is None or until.tzinfo is None:
        raise click.BadParameter("--from and --to need a time zone offset, e.g. +08:00")
    try:
        records = fivec_adapter(get_settings()).query_reports(list(mobiles), since, until)
    except (VendorError, ConfigurationError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    if as_json:
        print_json(
            [
                VendorReport(
                    msgid=r.vendor_ref,
                    mobile=r.phone,
                    status=r.vendor_status or r.status.value,
                    reported_at=r.reported_at,
                    extno=r.extras.get("extno"),
                )
                for r in records
            ]
        )
        return
    for r in records:
        shown = display_optional(r.reported_at)
        click.echo(f"{shown}  {r.phone}  {r.vendor_status:<8} msgid {r.vendor_ref}")
    if not records:
        click.echo("no record")


main.add_command(jobs)
main.add_command(status)
main.add_command(db)
main.add_command(keys)
