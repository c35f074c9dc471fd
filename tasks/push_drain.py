"""`herald.apply_pushes`: the stored pushes applied in batches until none is left.

The API's doorbell (worker/push_doorbell.py) sends this task; it takes batch after batch of the
pushes no applier has tried yet (tasks/pushes.py `apply_batch`). Two of them running at once
never take the same push (PostgreSQL's SKIP LOCKED), so they share a flood. A run ends when
nothing is left, having opened the doorbell and looked once more (a push committed while the
door was shut is found by that look), or when its time budget is spent, a small part of the
task limit: it then sends itself again, so a flood never holds one run near the limit. Beat's
sweep remains the safety net: what is stored is applied, whatever process died.
"""

from __future__ import annotations

import logging
from time import monotonic

from tasks.pushes import apply_batch
from worker.app import app
from worker.errors import StoreUnavailable
from worker.names import APPLY_PUSHES_TASK
from worker.push_doorbell import open_door, send_applier
from worker.settings import get_settings
from worker.store import utcnow

log = logging.getLogger(__name__)

BUDGET_SHARE_OF_TASK_LIMIT = 0.25
"""A run stops taking new batches after this share of the task limit (30 s of the default
120 s); one batch takes well under a second."""


@app.task(name=APPLY_PUSHES_TASK)
def apply_pushes() -> str:
    deadline = monotonic() + BUDGET_SHARE_OF_TASK_LIMIT * get_settings().task_time_limit_s
    try:
        taken, more_left = drain(deadline)
    except StoreUnavailable as exc:  # what is stored waits for the next ring or the sweep
        log.warning("applying pushes stopped: %s", exc)
        return "store unreachable"
    if more_left:
        send_applier()
        return f"{taken} pushes taken; more left: sent again"
    return f"{taken} pushes taken"


def drain(deadline: float) -> tuple[int, bool]:
    """Apply batches until none is left (the door opened, and one more look found nothing) or
    the deadline passed after a batch; how many pushes were taken, and whether more may be
    left. Every run applies at least one batch, so a run sent again always makes progress."""
    taken = 0
    door_open = False
    while True:
        count = apply_batch(now=utcnow())
        taken += count
        if count == 0:
            if door_open:
                return taken, False
            open_door()
            door_open = True
            continue
        door_open = False
        if monotonic() >= deadline:
            return taken, True
