"""The `herald` command line: run the local system, send, follow and cancel jobs."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

import click

from worker.errors import InvalidInput
from worker.producer import Accepted, submit_sms
from worker.store import (
    cancel_job,
    create_tables,
    deliveries_of,
    get_job,
    job_status,
    session_scope,
    utcnow,
)


@click.group()
def main() -> None:
    """herald: SMS, MMS and voice delivery through Chinese vendors."""


@main.command()
def up() -> None:
    """Run worker, beat, API, sandbox and Flower in this terminal; Ctrl-C stops them all."""
    from worker.up import run_local_system

    sys.exit(run_local_system(click.echo))


@main.group()
def send() -> None:
    """Accept a job (stored first, then queued)."""


@send.command("sms")
@click.option("--to", "to", multiple=True, required=True, help="A mobile number; repeatable.")
@click.option("--content", required=True, help="The text, with its 【signature】.")
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
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
def send_sms(
    to: tuple[str, ...],
    content: str,
    vendor: str | None,
    purpose: str | None,
    send_at: str | None,
    expires_at: str | None,
    idempotency_key: str | None,
    as_json: bool,
) -> None:
    """Send one SMS content to one or more numbers; prints the job id."""
    create_tables()
    fields: dict[str, Any] = {
        "to": list(to),
        "content": content,
        "vendor": vendor,
        "purpose": purpose,
        "send_at": send_at,
        "expires_at": expires_at,
        "idempotency_key": idempotency_key,
    }
    try:
        accepted = submit_sms(**{k: v for k, v in fields.items() if v is not None})
    except InvalidInput as exc:
        for problem in exc.problems:
            click.echo(f"error: {problem.field}: {problem.rule}", err=True)
        sys.exit(2)
    print_accepted(accepted, as_json)


def print_accepted(accepted: Accepted, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"id": accepted.id, "status": accepted.status.value}))
    else:
        click.echo(accepted.id)


@main.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
def status(job_id: str, as_json: bool) -> None:
    """Print a job and each of its recipients."""
    create_tables()
    with session_scope() as session:
        job = get_job(session, job_id=job_id)
        if job is None:
            click.echo(f"error: no job {job_id}", err=True)
            sys.exit(1)
        deliveries = deliveries_of(session, job_id=job_id)
    recipients = [
        {
            "phone": d.phone,
            "status": d.status.value,
            "vendor_status": d.vendor_status,
            "vendor_ref": d.vendor_ref,
            "reported_at": iso(d.reported_at),
            "last_error": d.last_error,
        }
        for d in deliveries
    ]
    summary = {
        "id": job.id,
        "channel": job.channel.value,
        "vendor": job.vendor,
        "status": job_status(deliveries).value,
        "created_at": iso(job.created_at),
        "send_at": iso(job.send_at),
        "recipients": recipients,
    }
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False))
        return
    click.echo(f"job {job.id}  {job.channel.value} via {job.vendor}  {summary['status']}")
    for r in recipients:
        line = f"  {r['phone']}  {r['status']:<11}"
        if r["vendor_status"]:
            line += f"  {r['vendor_status']}"
        if r["reported_at"]:
            line += f"  reported {r['reported_at']}"
        if r["last_error"]:
            line += f"  ({r['last_error']})"
        click.echo(line)


@main.command()
@click.argument("job_id")
def cancel(job_id: str) -> None:
    """Cancel the recipients of a job that have not reached the vendor."""
    create_tables()
    with session_scope() as session:
        if get_job(session, job_id=job_id) is None:
            click.echo(f"error: no job {job_id}", err=True)
            sys.exit(1)
        cancelled = cancel_job(session, job_id=job_id, now=utcnow())
    if not cancelled:
        click.echo("nothing to cancel: every recipient already reached the vendor", err=True)
        sys.exit(1)
    click.echo(f"cancelled {len(cancelled)} recipients")


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
