"""How long to wait before the next try: one pure function, exponential with full jitter."""

from __future__ import annotations

import random


def backoff_s(
    attempt: int, *, base_s: float, cap_s: float, rng: random.Random | None = None
) -> float:
    """A delay drawn uniformly from [0, min(cap, base * 2**(attempt-1))] ("full jitter").

    Full jitter spreads the retries of many jobs that failed together (AWS Architecture Blog,
    "Exponential Backoff And Jitter"); `attempt` counts from 1.
    """
    ceiling = min(cap_s, base_s * 2 ** max(0, attempt - 1))
    return (rng or random).uniform(0, ceiling)
