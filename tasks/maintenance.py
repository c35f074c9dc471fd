"""Beat's housekeeping: release what is due, and recover what a crash or a lost message left.

- `herald.release_due`: scheduled and deferred recipients whose time has come → queued, and
  their jobs enqueued (the only way a wait ends: no Celery countdowns). The workers do this
  every second without a task (worker/due_release.py); beat's task is the safety net.
- `herald.sweep`: jobs whose queued recipients were enqueued long ago are enqueued again (Redis
  may have lost the task; the claim makes a duplicate harmless); recipients `claimed` by a
  worker that died before calling the vendor are queued again; recipients `sending` for longer
  than any task can run become `unknown` (never resent: the call may have reached the vendor);
  recipients awaiting an MMS audit move on once it is decided, or fail when it never comes;
  recipients `submitted` past the report deadline with no report become `unknown`; 5C report
  pages a poll had to spool on this machine are imported (tasks/reports.py); pushes not yet
  applied are applied again, in batches (tasks/pushes.py `sweep_pushes`).
"""

from __future__ import annotations

import logging

from tasks.pushes import sweep_pushes
from tasks.reports import import_spooled_pages
from worker.app import app
from worker.due_release import release_due_now
from worker.names import RELEASE_DUE_TASK, SWEEP_TASK
from worker.producer import enqueue_send
from worker.settings import get_settings
from worker.store import (
    expire_stale_sending,
    mark_enqueued,
    requeue_stale_claims,
    session_scope,
    settle_audits,
    stale_queued_jobs,
    utcnow,
)
from worker.store.sweeper import expire_unreported

log = logging.getLogger(__name__)


@app.task(name=RELEASE_DUE_TASK)
def release_due_task() -> int:
    return release_due_now()


@app.task(name=SWEEP_TASK)
def sweep() -> dict[str, int]:
    settings = get_settings()
    now = utcnow()
    with session_scope() as session:
        lost = expire_stale_sending(session, now=now, older_than_s=settings.sending_timeout_s)
        lease_s = min(settings.claim_lease_s, settings.sending_timeout_s)
        reclaimed = requeue_stale_claims(session, now=now, older_than_s=lease_s)
        stale = stale_queued_jobs(session, now=now, older_than_s=settings.requeue_after_s)
        audited = settle_audits(session, now=now, timeout_s=settings.mms_audit_timeout_s)
        unreported = expire_unreported(session, now=now, older_than_s=settings.report_deadline_s)
        stale = sorted(set(stale) | set(reclaimed) | set(audited))
        mark_enqueued(session, job_ids=stale, now=now)
    if lost:
        log.error("%d recipients were left sending by a stopped worker: now unknown", len(lost))
    if unreported:
        log.warning(
            "%d submitted recipients had no delivery report within HERALD_REPORT_DEADLINE_S "
            "(%g s): now unknown",
            len(unreported),
            settings.report_deadline_s,
        )
    for job_id in stale:
        enqueue_send(job_id)
    imported = import_spooled_pages()
    pushes = sweep_pushes(now=now)
    return {
        "unknown": len(lost),
        "requeued": len(stale),
        "unreported": len(unreported),
        "spooled pages": len(imported),
        "pushes": pushes,
    }
