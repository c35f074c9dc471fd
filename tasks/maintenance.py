"""Beat's housekeeping: release what is due, and recover what a crash or a lost message left.

- `herald.release_due`: scheduled and deferred recipients whose time has come → queued, and
  their jobs enqueued (the only way a wait ends: no Celery countdowns).
- `herald.sweep`: jobs whose queued recipients were enqueued long ago are enqueued again (Redis
  may have lost the task; the claim makes a duplicate harmless); recipients `claimed` by a
  worker that died before calling the vendor are queued again; recipients `sending` for longer
  than any task can run become `unknown` (never resent: the call may have reached the vendor);
  recipients awaiting an MMS audit move on once it is decided, or fail when it never comes;
  pushes not yet applied are applied again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from tasks.pushes import apply_stored_push
from worker.app import app
from worker.names import RELEASE_DUE_TASK, SWEEP_TASK
from worker.producer import enqueue_send
from worker.settings import get_settings
from worker.store import (
    VendorPush,
    expire_stale_sending,
    mark_enqueued,
    mark_push_applied,
    release_due,
    requeue_stale_claims,
    session_scope,
    settle_audits,
    stale_queued_jobs,
    utcnow,
)

log = logging.getLogger(__name__)

PUSHES_PER_SWEEP = 500


@app.task(name=RELEASE_DUE_TASK)
def release_due_task() -> int:
    with session_scope() as session:
        job_ids = release_due(session, now=utcnow())
    for job_id in job_ids:
        enqueue_send(job_id)
    return len(job_ids)


@app.task(name=SWEEP_TASK)
def sweep() -> dict[str, int]:
    settings = get_settings()
    now = utcnow()
    with session_scope() as session:
        lost = expire_stale_sending(session, now=now, older_than_s=settings.sending_timeout_s)
        reclaimed = requeue_stale_claims(session, now=now, older_than_s=settings.sending_timeout_s)
        stale = stale_queued_jobs(session, now=now, older_than_s=settings.requeue_after_s)
        audited = settle_audits(session, now=now, timeout_s=settings.mms_audit_timeout_s)
        stale = sorted(set(stale) | set(reclaimed) | set(audited))
        mark_enqueued(session, job_ids=stale, now=now)
    if lost:
        log.error("%d recipients were left sending by a stopped worker: now unknown", len(lost))
    for job_id in stale:
        enqueue_send(job_id)
    with session_scope() as session:
        window = now - timedelta(seconds=settings.unmatched_report_window_s)
        pending = session.exec(
            select(VendorPush)
            .where(col(VendorPush.applied_at).is_(None))
            .order_by(col(VendorPush.id))
            .limit(PUSHES_PER_SWEEP)
        )
        outcomes = [
            apply_stored_push(session, push=push, now=now)
            if push.received_at >= window
            else give_up_on(session, push=push, now=now)
            for push in pending
        ]
    return {"unknown": len(lost), "requeued": len(stale), "pushes": len(outcomes)}


def give_up_on(session: Session, *, push: VendorPush, now: datetime) -> str:
    """A report that still names no stored delivery after the window: flagged, kept, left."""
    outcome = f"unmatched after {get_settings().unmatched_report_window_s:.0f} s: flagged"
    log.error("%s %s push %s matched no delivery in time; flagged", push.vendor, push.kind, push.id)
    mark_push_applied(session, push=push, outcome=outcome, now=now)
    return outcome
