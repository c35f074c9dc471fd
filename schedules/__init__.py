"""The beat schedule, as data: each entry's interval is a setting (README, "Configuration").

Imported by name by the Celery app (`worker.app.TASK_MODULES`), which is how `celery -A worker
beat` and `herald up` find it. Every entry expires after its own interval, so runs that beat
queued while no worker was up do not pile up; each task is safe to run twice.
"""

from __future__ import annotations

from typing import Any

from worker.app import app
from worker.names import (
    POLL_BALANCES_TASK,
    POLL_FIVEC_REPORTS_TASK,
    RELEASE_DUE_TASK,
    SWEEP_TASK,
)
from worker.settings import Settings, get_settings


def build_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    def every(task: str, interval_s: float) -> dict[str, Any]:
        return {"task": task, "schedule": interval_s, "options": {"expires": interval_s}}

    return {
        "release-due-sends": every(RELEASE_DUE_TASK, settings.release_safety_net_s),
        "sweep-stuck-jobs": every(SWEEP_TASK, settings.sweep_interval_s),
        "poll-balances": every(POLL_BALANCES_TASK, settings.balance_interval_s),
        "poll-5c-reports": every(POLL_FIVEC_REPORTS_TASK, settings.fivec_poll_interval_s),
    }


app.conf.beat_schedule = build_schedule(get_settings())
