"""How hard the fuzz tests try: a Hypothesis profile chosen from HERALD_FUZZ_EXAMPLES.

Unset, each property runs `CI_EXAMPLES` examples, derandomised so that CI is repeatable and fast;
`HERALD_FUZZ_EXAMPLES=10000 pytest tests/fuzz` runs that many per parser (and per API
operation), with fresh random inputs each run. No example database is written.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

EXAMPLES_VARIABLE = "HERALD_FUZZ_EXAMPLES"
CI_EXAMPLES = 300


def fuzz_examples() -> int:
    """Examples per property: HERALD_FUZZ_EXAMPLES when set, else `CI_EXAMPLES`."""
    value = os.environ.get(EXAMPLES_VARIABLE, "").strip()
    return int(value) if value else CI_EXAMPLES


DEEP = bool(os.environ.get(EXAMPLES_VARIABLE, "").strip())

settings.register_profile(
    "herald-fuzz",
    max_examples=fuzz_examples(),
    deadline=None,
    database=None,
    derandomize=not DEEP,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("herald-fuzz")
