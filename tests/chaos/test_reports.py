"""Chaos 5: delivery reports that are handed over and then lost, and poison pushes.

5C's reports are pulled (`api/recv/index.php`) and the vendor forgets what it hands over, so
the page must be kept before anything else can go wrong. The proxy stops the first poll that
carries records right after the vendor answered it:
- by cutting the store off (3 s) just before the page reaches herald: the poll spools the page
  to disk and keeps retrying, so every record must be applied (none `unknown`);
- by killing the worker's pool processes before the page reaches herald: those records are gone
  at the vendor and nothing can bring them back, so their recipients must become `unknown` at
  the report deadline (the suite's is 10 s), and only they.

Poison pushes (a NUL byte, bytes that are not UTF-8, a 1 MB field, a NUL in a reply) arrive at
the Veesing callback among the sandbox's genuine receipts: each must be answered, kept and
flagged once, and must not stop the genuine ones or the sweeper.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from urllib.parse import urlencode

import httpx
import pytest

from tests.chaos.conftest import Sizes, SystemFactory, record, verdict
from tests.chaos.faultproxy import Action, Fault, ProxyEvent
from tests.chaos.ledger import Ledger, chunks, phones
from tests.chaos.system import TASK_TIME_LIMIT_S, ChaosSystem
from tests.conftest import CALLBACK_TOKEN

pytestmark = pytest.mark.chaos

RECV_PATH = "/api/recv/index.php"
A_RECORD = rb"1[3-9]\d{9}"


@pytest.fixture(scope="module")
def system(start_system: SystemFactory) -> ChaosSystem:
    return start_system()


def kill_pool(system: ChaosSystem) -> None:
    for pid in system.pool_children():
        os.kill(pid, signal.SIGKILL)


def cut_store_for(system: ChaosSystem, seconds: float) -> None:
    system.pg_proxy.refuse()
    threading.Timer(seconds, system.pg_proxy.accept).start()


def test_fivec_poll_killed_after_the_vendor_handed_over_reports(
    system: ChaosSystem, sizes: Sizes
) -> None:
    fivec_poll_broken(
        system, sizes, "5C poll killed after fetch", "fk", 50, kill_pool, "kill_after"
    )


def test_fivec_poll_loses_the_store_after_the_vendor_handed_over_reports(
    system: ChaosSystem, sizes: Sizes
) -> None:
    fivec_poll_broken(
        system,
        sizes,
        "5C poll: store lost after fetch",
        "fs",
        51,
        lambda s: cut_store_for(s, 3.0),
        "call_after",
    )


def fivec_poll_broken(
    system: ChaosSystem,
    sizes: Sizes,
    scenario: str,
    tag: str,
    number: int,
    hook: Callable[[ChaosSystem], None],
    action: Action,
) -> None:
    ledger = Ledger(system, scenario, tag)
    seen = len(system.vendor_proxy.events)
    system.vendor_proxy.set_plan(
        Fault(action, paths=[RECV_PATH], reply_matches=A_RECORD, limit=1),
        hook=lambda: hook(system),
    )
    recipients = phones(number, sizes.recipients)
    try:
        for job in chunks(recipients, sizes.per_job):
            ledger.submit_fivec_mms(job)
        settled = ledger.wait_settled(sizes.settle_s)
        if action == "kill_after" and handed_over(system, seen) < len(recipients):
            # The killed poll held the poll lock until it expired (the task limit and 5 s):
            # the reports still at the vendor come after that, and may settle recipients the
            # report deadline made `unknown` meanwhile.
            time.sleep(TASK_TIME_LIMIT_S + 5)
            settled = ledger.wait_settled(sizes.settle_s)
    finally:
        system.vendor_proxy.set_plan()
    row = record(ledger, settled=settled)
    broken = broken_polls(system, seen)
    handed = handed_over(system, seen)
    row.notes.append(f"{len(broken)} poll broken after the vendor handed over {handed} records")
    if not broken:
        row.problems.append("no poll carrying records was broken: the scenario proved nothing")
    if row.unknown > lost_at_most(action, handed):
        row.problems.append(
            f"{row.unknown} unknown, but only {lost_at_most(action, handed)} records were "
            "beyond saving"
        )
    verdict(row, system)


def broken_polls(system: ChaosSystem, seen: int) -> list[ProxyEvent]:
    return [
        e for e in system.vendor_proxy.events[seen:] if e.path == RECV_PATH and e.action != "pass"
    ]


def handed_over(system: ChaosSystem, seen: int) -> int:
    """Records on the report pages the proxy broke after the vendor handed them over."""
    return sum(len(re.findall(A_RECORD, e.upstream_body)) for e in broken_polls(system, seen))


def lost_at_most(action: Action, handed: int) -> int:
    """Records no fix can save: those of a page whose worker died before it had the page."""
    return handed if action == "kill_after" else 0


POISON: dict[str, bytes] = {
    "NUL in a receipt": urlencode(
        {"mobile": "13952000001\x00", "taskid": "poison-1", "status": "1", "code": "DELIVRD"}
    ).encode(),
    "bytes that are not UTF-8": b"mobile=%FF%FE13952000002&taskid=poison-%C3%28&status=1",
    "a 1 MB field": urlencode(
        {"mobile": "13952000003", "taskid": "poison-3", "content": "好" * 350_000}
    ).encode(),
    "NUL in a reply": urlencode(
        {"mobile": "13952000004", "taskid": "poison-4", "content": "TD\x00"}
    ).encode(),
}


def test_poison_pushes_among_good_ones(system: ChaosSystem, sizes: Sizes) -> None:
    ledger = Ledger(system, "poison pushes among good ones", "pp")
    marks = system.log_marks()
    started = system.sql("SELECT now()")[0][0]
    url = f"{system.api_url}/callbacks/veesing/sms/{CALLBACK_TOKEN}"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    jobs = chunks(phones(52, sizes.recipients), sizes.per_job)
    answers: dict[str, str] = {}
    for n, job in enumerate(jobs):
        ledger.submit_sms(job)
        if n == len(jobs) // 2:
            time.sleep(1)  # genuine receipts are arriving now
            for name, body in POISON.items():
                try:
                    response = httpx.post(url, content=body, headers=form, timeout=30)
                    answers[name] = str(response.status_code)
                except httpx.HTTPError as exc:
                    answers[name] = type(exc).__name__
    settled = ledger.wait_settled(sizes.settle_s, quiet_s=3 * 2.0)  # three sweeps
    row = record(ledger, settled=settled)
    pushes = system.sql(
        "SELECT id, kind, outcome FROM vendorpush WHERE received_at >= :t AND ("
        " applied_at IS NULL OR outcome LIKE 'quarantined%' OR outcome LIKE 'malformed%')",
        t=started,
    )
    unapplied = [p for p in pushes if p[2] is None]
    set_aside = Counter(str(p[2]).split(":")[0] for p in pushes if p[2] is not None)
    sweep_errors = re.findall(
        r"herald\.sweep\[[^\]]+\] raised unexpected: (\w+)", system.logs_since(marks)
    )
    row.notes.append(
        f"API answers to the poison pushes: {answers}; kept aside: {dict(set_aside)} "
        "(an unmatched receipt is retried by the sweeps for HERALD_UNMATCHED_REPORT_WINDOW_S, "
        "then flagged)"
    )
    if any(a.startswith("5") or not a[:1].isdigit() for a in answers.values()):
        row.problems.append(f"a poison push was answered {answers} (the vendor retries it)")
    if unapplied:
        row.problems.append(f"{len(unapplied)} pushes never tried (outcome NULL) after the sweeps")
    if sweep_errors:
        row.problems.append(
            f"the sweep failed {len(sweep_errors)} times ({sorted(set(sweep_errors))})"
        )
    verdict(row, system)
