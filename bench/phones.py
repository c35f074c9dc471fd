"""Mainland mobile numbers that never repeat within a run, so that no number is held by the
once-a-minute rule (herald's or the sandbox's): the bench measures throughput, not the rule."""

from __future__ import annotations

import itertools
import random

PREFIXES = "3456789"


class Phones:
    def __init__(self) -> None:
        self._numbers = itertools.count(random.randrange(10**9))

    def take(self, count: int) -> list[str]:
        return [self._phone(next(self._numbers)) for _ in range(count)]

    @staticmethod
    def _phone(n: int) -> str:
        return f"1{PREFIXES[(n // 10**9) % len(PREFIXES)]}{n % 10**9:09d}"
