"""`python -m tests.chaos [--full] [pytest arguments]`: run the chaos suite and print its table.

The same as `pytest tests/chaos`, with `--full` for the sizes of issue 9 (`CHAOS_FULL=1`).
The table is also written to tests/chaos/results/table.md and table.json.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest


def main(argv: list[str]) -> int:
    if "--full" in argv:
        argv = [a for a in argv if a != "--full"]
        os.environ["CHAOS_FULL"] = "1"
    suite = str(Path(__file__).parent)
    return int(pytest.main([suite, "-p", "no:cacheprovider", "-rxX", *argv]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
