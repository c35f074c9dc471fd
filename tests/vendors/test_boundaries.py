"""Unit tests: the vendor modules depend on nothing of ours but errors, transport, codes, clock,
mms and the pure records and words of delivery_reports and enums (docs/design.md, "Layout")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import worker

WORKER = Path(worker.__file__).parent
ALLOWED = {
    "worker.delivery_reports",
    "worker.enums",
    "worker.errors",
    "worker.mms",
    "worker.vendors",
    "worker.vendors.codes",
    "worker.clock",
    "worker.vendors.transport",
    "worker.vendors.veesing",
}
MODULES = [*sorted((WORKER / "vendors").glob("*.py")), WORKER / "mms.py"]


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_a_protocol_module_imports_only_the_allowed_parts_of_herald(path: Path) -> None:
    ours = {name for name in imported_modules(path) if name.split(".")[0] in ("worker", "tasks")}

    assert ours <= ALLOWED, f"{path.name} imports {sorted(ours - ALLOWED)}"


def test_mms_depends_on_the_errors_alone() -> None:
    ours = {n for n in imported_modules(WORKER / "mms.py") if n.startswith("worker")}

    assert ours == {"worker.errors"}
