"""What a scenario submitted, and what became of it: one row of the chaos table.

Definitions (issue 9):
- *lost*: a recipient neither final nor `unknown` once the scenario has settled, or one whose
  status says the vendor took it (`submitted`, `delivered`, `undelivered`) although the sandbox
  never sent it;
- *sent twice*: a (job, phone) that appears more than once in the sandbox's send log;
  acceptable only when that recipient ended `unknown`;
- *unknown*: acceptable only where the request may have reached the vendor (herald cannot tell
  a proxy's 502 from the vendor's); the row's notes count the `unknown` recipients the sandbox
  never sent.

A scenario fails on any loss, any duplicate not flagged `unknown`, or a problem of its own (an
API answer, a stuck push).
"""

from __future__ import annotations

import ast
import base64
import os
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.chaos.system import ChaosSystem

FINAL = {"delivered", "undelivered", "failed", "cancelled"}
SETTLED = FINAL | {"unknown"}
SAYS_SENT = {"submitted", "delivered", "undelivered"}
STALL_S = 20.0


def phones(scenario: int, count: int) -> list[str]:
    """`count` mobile numbers of their own for scenario number `scenario` (0-99)."""
    return [f"139{scenario:02d}{n:06d}" for n in range(count)]


def chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


@dataclass
class Row:
    scenario: str
    recipients: int = 0
    delivered: int = 0
    lost: int = 0
    sent_twice: int = 0
    unknown: int = 0
    failed: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    expected_failure: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def outcome(self) -> str:
        if self.ok:
            return "pass"
        return "FAIL: " + "; ".join(self.problems)

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "recipients": self.recipients,
            "delivered": self.delivered,
            "lost": self.lost,
            "sent_twice": self.sent_twice,
            "unknown": self.unknown,
            "failed": self.failed,
            "outcome": self.outcome,
            "notes": self.notes,
            "expected_failure": self.expected_failure,
            "seconds": round(self.seconds, 1),
        }


class Ledger:
    """One scenario's jobs: submitted through the HTTP API as a producer would (an idempotency
    key on every job, retried after a 5xx or a refused connection), then tallied."""

    def __init__(self, system: ChaosSystem, scenario: str, tag: str) -> None:
        self.system = system
        self.row = Row(scenario)
        self.tag = tag
        self.jobs: dict[str, list[str]] = {}
        self.by_text: dict[str, str] = {}
        self.api_answers: Counter[str] = Counter()
        self.slowest_answer_s = 0.0
        self._run = uuid.uuid4().hex[:8]
        self._client = httpx.Client(timeout=15)
        self._started = time.monotonic()

    @property
    def marker(self) -> str:
        """What every message of this ledger carries (in its content or title), and nothing
        else does: how the fault proxy and the send log tell its messages apart."""
        return f"chaos {self.tag} #"

    # --- submitting ---

    def submit_sms(self, phones: list[str], *, patience_s: float = 90, **extra: Any) -> str:
        text = f"【Herald】{self.marker}{len(self.by_text)}"
        body = {"to": phones, "content": text, "purpose": "notification", **extra}
        return self._submit("/v1/sms", body, text, phones, patience_s)

    def submit_fivec_mms(self, phones: list[str], *, patience_s: float = 90) -> str:
        title = f"{self.marker}{len(self.by_text)}"
        gif = base64.b64encode(b"GIF89a" + b"\x02" * 120).decode()
        body = {
            "to": phones,
            "title": title,
            "vendor": "fivec",
            "purpose": "notification",
            "frames": [{"seconds": 5, "text": "你好", "media": {"type": "gif", "base64": gif}}],
        }
        return self._submit("/v1/mms", body, title, phones, patience_s)

    def _submit(
        self, path: str, body: dict[str, Any], text: str, phones: list[str], patience_s: float
    ) -> str:
        body = {**body, "idempotency_key": f"chaos-{self._run}-{len(self.by_text)}"}
        deadline = time.monotonic() + patience_s
        while True:
            wait_s = 1.0
            asked = time.monotonic()
            try:
                response = self._client.post(f"{self.system.api_url}{path}", json=body)
            except httpx.HTTPError as exc:
                self.api_answers[type(exc).__name__] += 1
            else:
                self.slowest_answer_s = max(self.slowest_answer_s, time.monotonic() - asked)
                retry_after = response.headers.get("retry-after")
                answer = f"{response.status_code}{' Retry-After' if retry_after else ''}"
                self.api_answers[answer] += 1
                if response.status_code == 202:
                    job_id = str(response.json()["id"])
                    self.jobs[job_id] = list(phones)
                    self.by_text[text] = job_id
                    return job_id
                if response.status_code < 500:
                    raise AssertionError(f"{path} answered {response.status_code}: {response.text}")
                if retry_after and retry_after.isdigit():
                    wait_s = float(retry_after)
            if time.monotonic() > deadline:
                raise AssertionError(f"the API did not accept a job in {patience_s} s")
            time.sleep(wait_s)

    # --- watching ---

    def statuses(self) -> dict[tuple[str, str], tuple[str, str | None]]:
        """(job, phone) → (status, last_error), from the store."""
        if not self.jobs:
            return {}
        rows = self.system.sql(
            "SELECT job_id, phone, status, last_error FROM delivery WHERE job_id IN :ids",
            ids=list(self.jobs),
        )
        return {(r[0], r[1]): (r[2], r[3]) for r in rows}

    def in_flight(self) -> Counter[str]:
        """How many recipients are `claimed` or `sending` now."""
        return Counter(
            status for status, _ in self.statuses().values() if status in ("claimed", "sending")
        )

    def open_count(self) -> int:
        return sum(1 for status, _ in self.statuses().values() if status not in SETTLED)

    def wait_settled(
        self,
        timeout_s: float,
        *,
        quiet_s: float = 4.0,
        tick: Callable[[], None] | None = None,
        stall_s: float | None = None,
    ) -> bool:
        """Wait until every recipient is final or unknown, then `quiet_s` more (late
        duplicates); False when the time ran out first. `tick` runs every second meanwhile."""
        return settle_all([self], timeout_s, quiet_s=quiet_s, tick=tick, stall_s=stall_s or STALL_S)

    def sends(self) -> Counter[tuple[str, str]]:
        """(job, phone) → how many times the sandbox sent it."""
        counts: Counter[tuple[str, str]] = Counter()
        for entry in self.system.send_log():
            job_id = self.by_text.get(entry.get("content") or "") or self.by_text.get(
                entry.get("title") or ""
            )
            if job_id is not None:
                counts[(job_id, entry["phone"])] += 1
        return counts

    # --- the verdict ---

    def tally(self, *, settled: bool = True) -> Row:
        self._client.close()
        row = self.row
        statuses = self.statuses()
        sends = self.sends()
        row.recipients = sum(len(p) for p in self.jobs.values())
        counts = Counter(status for status, _ in statuses.values())
        row.delivered = counts["delivered"]
        row.unknown = counts["unknown"]
        row.failed = counts["failed"]
        open_ = {k: v for k, v in statuses.items() if v[0] not in SETTLED}
        unsent = {k: v for k, v in statuses.items() if v[0] in SAYS_SENT and sends[k] == 0}
        twice = {k: n for k, n in sends.items() if n > 1}
        bad_twice = {k: n for k, n in twice.items() if statuses.get(k, ("?", None))[0] != "unknown"}
        row.lost = len(open_) + len(unsent)
        row.sent_twice = len(twice)
        row.seconds = time.monotonic() - self._started
        if row.lost:
            row.problems.append(f"{row.lost} lost")
            left = Counter(v[0] for v in open_.values())
            if left:
                row.notes.append(f"left open: {dict(left)} (settled in time: {settled})")
            for key, (status, error) in list(open_.items())[:2]:
                row.notes.append(f"open {key[1]} {status}: {error}")
            if unsent:
                row.notes.append(
                    f"{len(unsent)} say {dict(Counter(v[0] for v in unsent.values()))}"
                    " but were never sent"
                )
        if bad_twice:
            row.problems.append(f"{len(bad_twice)} sent twice, not flagged unknown")
            for key in list(bad_twice)[:2]:
                status, error = statuses.get(key, ("?", None))
                row.notes.append(f"twice {key[1]} ended {status}: {error}")
        unknown_unsent = sum(1 for k, v in statuses.items() if v[0] == "unknown" and sends[k] == 0)
        if row.unknown:
            row.notes.append(
                f"unknown: {unknown_unsent} of {row.unknown} never reached the sandbox"
            )
        failed_sent = sum(1 for k, v in statuses.items() if v[0] == "failed" and sends[k] > 0)
        if failed_sent:
            row.notes.append(f"{failed_sent} failed although the sandbox sent them")
        others = {s: n for s, n in counts.items() if s not in ("delivered", "unknown")}
        if others:
            row.notes.append(f"other statuses: {others}")
        if self.api_answers.keys() - {"202"}:
            row.notes.append(f"API answers to producers: {dict(self.api_answers)}")
        if self.slowest_answer_s > 5:
            row.notes.append(f"slowest API answer to a producer: {self.slowest_answer_s:.1f} s")
        return row


def settle_all(
    ledgers: list[Ledger],
    timeout_s: float,
    *,
    quiet_s: float = 4.0,
    tick: Callable[[], None] | None = None,
    stall_s: float = STALL_S,
) -> bool:
    """`Ledger.wait_settled` for several ledgers at once. Once every recipient is final or
    `unknown`, waiting goes on while receipts are still on their way (pushes the sandbox has
    not delivered, or the store has not applied yet): an `unknown` recipient's receipt may
    still settle it. Waiting also ends when nothing has changed for `stall_s` while no
    recipient waits for a time of its own (`deferred`, `scheduled`): `stall_s` is longer than
    any recovery herald has (the sweeper's requeue, `sending` and report deadline timeouts), so
    what is still open then stays open. A scenario whose recovery waits for a worker's liveness
    check passes a longer one."""
    deadline = time.monotonic() + timeout_s
    settled = False
    last: object = None
    changed_at = time.monotonic()
    while time.monotonic() < deadline:
        if tick is not None:
            tick()
        try:
            snapshot = [sorted(ledger.statuses().items()) for ledger in ledgers]
            receipts = receipts_on_the_way(ledgers[0].system) if ledgers else 0
        except Exception as exc:  # the harness reads the store directly; it may be unreachable
            if os.environ.get("CHAOS_DEBUG"):
                print("settle:", repr(exc))
            snapshot = None
        if snapshot is not None:
            if os.environ.get("CHAOS_DEBUG"):
                print(time.strftime("%X"), Counter(v[0] for s in snapshot for _, v in s), receipts)
            if all(v[0] in SETTLED for s in snapshot for _, v in s):
                settled = True
                if not receipts:
                    break
            snapshot.append([(("receipts", ""), (str(receipts), None))])
            waiting = any(v[0] in ("deferred", "scheduled") for s in snapshot for _, v in s)
            if snapshot != last or waiting:
                last, changed_at = snapshot, time.monotonic()
            elif time.monotonic() - changed_at > stall_s:
                break
        time.sleep(1)
    time.sleep(quiet_s)
    return settled


def receipts_on_the_way(system: ChaosSystem) -> int:
    """Pushes the sandbox still tries to deliver, plus pushes stored but never tried."""
    pending = int(system.sandbox("GET", "/_sandbox/pushes")["pending"])
    (stored,) = system.sql(
        "SELECT count(*) FROM vendorpush WHERE applied_at IS NULL AND outcome IS NULL"
    )[0]
    return pending + int(stored)


SWEEP_RESULT = re.compile(r"herald\.sweep\[[^\]]+\] succeeded in [^:]+: (\{[^}]*\})")


def sweep_totals(logs: str) -> Counter[str]:
    """What beat's sweeps recovered, summed from the workers' logs: recipients left `sending`
    (now unknown), jobs requeued, pushes applied."""
    totals: Counter[str] = Counter()
    for match in SWEEP_RESULT.finditer(logs):
        totals.update(ast.literal_eval(match.group(1)))
    return totals
