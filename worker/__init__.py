"""herald's delivery engine.

`celery -A worker ...` finds the Celery app through `__getattr__` below, so that importing a
light module (`worker.vendors.veesing`, `worker.sandbox`) does not build the Celery app.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # Celery's find_app looks for `worker.app`, then `worker.celery`; `app` is also the module
    # name of worker/app.py, so the instance is offered under `celery`.
    if name == "celery":
        from worker.app import app

        return app
    raise AttributeError(f"module 'worker' has no attribute {name!r}")
