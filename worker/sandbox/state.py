"""What the simulated vendors share: clock, accounts, limits, faults, send and request logs."""

from __future__ import annotations

import json
import random
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any, Literal, TextIO

from pydantic import BaseModel, Field

from worker.sandbox.common import SHANGHAI
from worker.sandbox.config import SandboxConfig

ACCOUNTS = ("veesing_sms", "veesing_mms", "veesing_voice", "chuangrui", "fivec")
FaultKind = Literal["reply", "503", "refuse"]


class Clock:
    """Wall time with a settable offset, so tests can move to the next Shanghai day."""

    def __init__(self) -> None:
        self.offset_s = 0.0

    def timestamp(self) -> float:
        return time.time() + self.offset_s

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp(), SHANGHAI)

    def today(self) -> date:
        return self.now().date()


@dataclass
class Account:
    """One vendor account: `status` other than active, `ip_blocked` and `balance` cause errors."""

    status: Literal["active", "locked", "cancelled", "disabled"] = "active"
    ip_blocked: bool = False
    balance: int = 0


def _reply_only() -> list[FaultKind]:
    return ["reply"]


class Faults(BaseModel):
    """Runtime fault injection, set by `POST /_sandbox/faults`."""

    error_rate: float = Field(0.0, ge=0, le=1)
    errors: list[FaultKind] = Field(default_factory=_reply_only)
    timeout_after_send_rate: float = Field(0.0, ge=0, le=1)
    latency_s: float = Field(0.0, ge=0)
    stall_s: float = Field(60.0, ge=0, description="How long an accepted send stalls.")
    paths: list[str] = Field(default_factory=list, description="Path prefixes; empty = all.")
    limit: int | None = Field(None, ge=0, description="Faults left to inject; None = no limit.")
    reply_message: str | None = Field(
        None, description='What a "reply" fault answers instead of the retry-able default.'
    )

    def applies_to(self, path: str) -> bool:
        return not self.paths or any(path.startswith(prefix) for prefix in self.paths)


class Breach(Enum):
    """A vendor rule a send would break."""

    ACCOUNT_DAILY = "account_daily"
    NUMBER_DAILY = "number_daily"
    MINUTE = "minute"


class Limits:
    """The documented vendor rules, per account: one per number per minute, daily caps."""

    def __init__(self, config: SandboxConfig, clock: Clock) -> None:
        self._config = config
        self._clock = clock
        self._last_sent: dict[tuple[str, str], float] = {}
        self._day: date = clock.today()
        self._per_number: dict[tuple[str, str], int] = {}
        self._per_account: dict[str, int] = {}

    def reset(self) -> None:
        self._last_sent.clear()
        self._per_number.clear()
        self._per_account.clear()

    def _roll_day(self) -> None:
        today = self._clock.today()
        if today != self._day:
            self._day = today
            self._per_number.clear()
            self._per_account.clear()

    def check(self, account: str, phones: list[str]) -> Breach | None:
        """The first rule `phones` (one message each) would break, or None.

        A number listed twice in one request breaks the minute rule with itself.
        """
        self._roll_day()
        if self._per_account.get(account, 0) + len(phones) > self._config.account_daily_cap:
            return Breach.ACCOUNT_DAILY
        counts: dict[str, int] = {}
        for phone in phones:
            counts[phone] = counts.get(phone, 0) + 1
        for phone, extra in counts.items():
            if (
                self._per_number.get((account, phone), 0) + extra
                > self._config.per_number_daily_cap
            ):
                return Breach.NUMBER_DAILY
        now = self._clock.timestamp()
        for phone, extra in counts.items():
            last = self._last_sent.get((account, phone))
            if extra > 1 or (last is not None and now - last < self._config.minute_rule_s):
                return Breach.MINUTE
        return None

    def record(self, account: str, phones: Iterable[str]) -> None:
        self._roll_day()
        now = self._clock.timestamp()
        last_sent, per_number, count = self._last_sent, self._per_number, 0
        for phone in phones:
            key = (account, phone)
            last_sent[key] = now
            per_number[key] = per_number.get(key, 0) + 1
            count += 1
        self._per_account[account] = self._per_account.get(account, 0) + count


_encode = json.JSONEncoder(ensure_ascii=False).encode
"""`json.dumps(entry, ensure_ascii=False)` without building an encoder for every line."""


class JsonLog:
    """An in-memory list of JSON objects, optionally appended to a JSON-lines file.

    The file stays open and is flushed once per `extend` (one request's messages), not once
    per message: a 100-phone batch is one write.
    """

    def __init__(self, limit: int, path: Path | None = None) -> None:
        self.entries: deque[dict[str, Any]] = deque(maxlen=limit)
        self._path = path
        self._file: TextIO | None = None

    def append(self, entry: dict[str, Any]) -> None:
        self.extend([entry])

    def extend(self, entries: list[dict[str, Any]]) -> None:
        self.entries.extend(entries)
        if self._path is not None:
            if self._file is None:
                self._file = self._path.open("a", encoding="utf-8")
            self._file.write("".join(_encode(entry) + "\n" for entry in entries))
            self._file.flush()

    def clear(self) -> None:
        self.entries.clear()


class SendTally:
    """How many times each number was sent since the last reset, kept as the sends happen so
    that "was any number sent twice?" is answered at once for any number of sends (the
    in-memory log keeps only the last `memory_log_limit` entries)."""

    def __init__(self) -> None:
        self._per_phone: dict[str, int] = {}
        self._repeated: set[str] = set()
        self._per_product: Counter[str] = Counter()

    def add(self, product: str, phones: Iterable[str]) -> None:
        per_phone, count = self._per_phone, 0
        for phone in phones:
            seen = per_phone.get(phone, 0)
            per_phone[phone] = seen + 1
            if seen:
                self._repeated.add(phone)
            count += 1
        self._per_product[product] += count

    def clear(self) -> None:
        self._per_phone.clear()
        self._repeated.clear()
        self._per_product.clear()

    def summary(self, limit: int) -> dict[str, Any]:
        repeated = sorted(self._repeated)[:limit]
        return {
            "sends": sum(self._per_product.values()),
            "numbers": len(self._per_phone),
            "repeated": len(self._repeated),
            "repeated_numbers": {phone: self._per_phone[phone] for phone in repeated},
            "by_product": dict(self._per_product),
        }


class SandboxState:
    """Everything the vendors remember; `reset()` forgets it (the log file is kept)."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.clock = Clock()
        self.rng = random.Random(config.seed)
        self.limits = Limits(config, self.clock)
        self.sends = JsonLog(config.memory_log_limit, config.log_file)
        self.tally = SendTally()
        self.requests = JsonLog(config.memory_log_limit)
        self.pushes = JsonLog(config.memory_log_limit)
        self.faults = Faults()
        self.accounts = {name: Account(balance=config.balance) for name in ACCOUNTS}
        self.undeliverable: set[str] = set()
        self.blacklist: set[str] = set()
        self._reset_hooks: list[Callable[[], None]] = []
        if config.log_file is not None:
            config.log_file.parent.mkdir(parents=True, exist_ok=True)

    def on_reset(self, hook: Callable[[], None]) -> None:
        self._reset_hooks.append(hook)

    def reset(self) -> None:
        self.clock.offset_s = 0.0
        self.limits.reset()
        self.sends.clear()
        self.tally.clear()
        self.requests.clear()
        self.pushes.clear()
        self.faults = Faults()
        self.accounts = {name: Account(balance=self.config.balance) for name in ACCOUNTS}
        self.undeliverable.clear()
        self.blacklist.clear()
        for hook in self._reset_hooks:
            hook()

    def log_send(
        self, vendor: str, product: str, phone: str, ref: str, content: str, **extra: str
    ) -> None:
        """One accepted message to one phone, in the send log (memory and file)."""
        self.log_sends(vendor, product, ref, [(phone, content)], **extra)

    def log_sends(
        self,
        vendor: str,
        product: str,
        ref: str,
        messages: Sequence[tuple[str, str]],
        **extra: str,
    ) -> None:
        """The messages (phone, content) one request had accepted, in the send log and the
        tally: one entry per phone, all with the same `ref` and time."""
        at = self.clock.now().isoformat()
        self.sends.extend(
            [
                {
                    "vendor": vendor,
                    "product": product,
                    "phone": phone,
                    "ref": ref,
                    "content": content,
                    "at": at,
                    **extra,
                }
                for phone, content in messages
            ]
        )
        self.tally.add(f"{vendor}/{product}", (phone for phone, _ in messages))

    def delivered(self, phone: str) -> bool:
        """Whether this phone's receipt reports success (undeliverable list, then the rate)."""
        if phone in self.undeliverable:
            return False
        return self.rng.random() >= self.config.undelivered_rate

    def draw_fault(self, path: str) -> FaultKind | None:
        faults = self.faults
        if faults.error_rate <= 0 or not faults.errors or not faults.applies_to(path):
            return None
        if faults.limit is not None and faults.limit <= 0:
            return None
        if self.rng.random() >= faults.error_rate:
            return None
        if faults.limit is not None:
            faults.limit -= 1
        return self.rng.choice(faults.errors)

    def draw_stall(self, path: str) -> bool:
        faults = self.faults
        if faults.timeout_after_send_rate <= 0 or not faults.applies_to(path):
            return False
        return self.rng.random() < faults.timeout_after_send_rate

    def snapshot(self) -> dict[str, Any]:
        return {
            "accounts": {name: asdict(account) for name, account in self.accounts.items()},
            "undeliverable": sorted(self.undeliverable),
            "blacklist": sorted(self.blacklist),
            "clock_offset_s": self.clock.offset_s,
            "now": self.clock.now().isoformat(),
        }
