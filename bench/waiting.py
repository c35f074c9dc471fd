"""Waiting for a condition within a measurement's time budget."""

from __future__ import annotations

import time
from collections.abc import Callable

POLL_S = 0.25


def wait_for(check: Callable[[], bool], *, started: float, budget_s: float) -> float | None:
    """The monotonic time at which `check` first held, or None once `budget_s` from `started`
    has passed without it."""
    while True:
        if check():
            return time.monotonic()
        if time.monotonic() - started > budget_s:
            return None
        time.sleep(POLL_S)
