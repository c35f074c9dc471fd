"""Chaos 4: a vendor that breaks, before or after it took the message, through the fault proxy.

Every fault runs at once on one system, each on its own jobs: the proxy breaks every second
Veesing SMS send (`/smsApi/group`) that carries the fault's marker and forwards the rest.
"Before forwarding" the sandbox never sees the request; "after forwarding" it sent the message
(and pushes its receipt) but herald gets a broken answer, which must never lead to a second send.
"""

from __future__ import annotations

import pytest

from tests.chaos.conftest import Sizes, SystemFactory, record, verdict
from tests.chaos.faultproxy import Action, Fault
from tests.chaos.ledger import Ledger, Row, chunks, phones, settle_all
from tests.chaos.system import ChaosSystem

pytestmark = pytest.mark.chaos

SEND_PATH = "/smsApi/group"
FAULTS: list[tuple[str, Action | None]] = [
    ("vendor: none (control)", None),
    ("vendor: 502 before forwarding", "502_before"),
    ("vendor: reset before forwarding", "reset_before"),
    ("vendor: 502 after forwarding", "502_after"),
    ("vendor: hang past read timeout", "hang_after"),
    ("vendor: HTML after forwarding", "html_after"),
    ("vendor: truncated JSON after forwarding", "truncated_after"),
    ("vendor: GBK reply labelled UTF-8", "misencoded_after"),
    ("vendor: reset after forwarding", "reset_after"),
]


@pytest.fixture(scope="module")
def rows(start_system: SystemFactory, sizes: Sizes) -> dict[str, tuple[Row, ChaosSystem]]:
    system = start_system()
    ledgers = [Ledger(system, name, f"v{n}") for n, (name, _) in enumerate(FAULTS)]
    system.vendor_proxy.set_plan(
        *(
            Fault(action, paths=[SEND_PATH], marker=ledger.marker, pattern="01")
            for ledger, (_, action) in zip(ledgers, FAULTS, strict=True)
            if action is not None
        )
    )
    batches = [
        chunks(phones(40 + n, sizes.vendor_recipients), sizes.per_job) for n in range(len(ledgers))
    ]
    for round_ in zip(*batches, strict=True):  # interleaved, so the faults overlap in time
        for ledger, job in zip(ledgers, round_, strict=True):
            ledger.submit_sms(job)
    settled = settle_all(ledgers, sizes.settle_s)
    system.vendor_proxy.set_plan()
    result = {}
    for ledger, (name, action) in zip(ledgers, FAULTS, strict=True):
        row = record(ledger, settled=settled)
        calls = [e for e in system.vendor_proxy.events if ledger.marker in e.text]
        broken = [e for e in calls if e.action != "pass"]
        row.notes.append(f"{len(broken)} of {len(calls)} sends broken by the proxy")
        if action is not None and not broken:
            row.problems.append("the proxy broke no call: the scenario proved nothing")
        result[name] = (row, system)
    return result


@pytest.mark.parametrize(
    "scenario", [pytest.param(name, id=action or "none") for name, action in FAULTS]
)
def test_vendor_fault(rows: dict[str, tuple[Row, ChaosSystem]], scenario: str) -> None:
    verdict(*rows[scenario])
