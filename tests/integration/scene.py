"""What the vendor-document integration tests share: one `Scene` per test, and its tidy-up.

A test module subclasses `Scene` for its product (the sandbox account, the send path, the breaker
keys, the sandbox-wide state to put back), adds what only that product needs (how to submit, its
adapter), and makes it the module's autouse fixture:

    @pytest.fixture(autouse=True)
    def scene(system: System, engine: Engine) -> Iterator[Scene]:
        yield from Scene.staged(system, engine)

The tidy-up cancels what a test left waiting, closes the product's breakers, clears faults and
puts the sandbox account back as it found it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any, ClassVar, Self
from zoneinfo import ZoneInfo

import httpx
import redis
from sqlalchemy.engine import Engine
from sqlmodel import Session

from tests.integration.conftest import System
from worker.errors import MessageRejected, QuotaExceeded, TransientError, VendorBlocked
from worker.store import DeliveryEvent, deliveries_of, events_of
from worker.vendors.veesing import VeesingCredentials

SHANGHAI = ZoneInfo("Asia/Shanghai")
COOLDOWN_S = 300  # HERALD_VENDOR_BLOCKED_COOLDOWN_S, the fixture leaves it at its default
RESTING = {"deferred", "failed", "delivered", "undelivered", "unknown", "cancelled"}
"""Statuses a recipient stays in for a while: a test waits for one, then asserts which."""
RESTING_OR_SUBMITTED = RESTING | {"submitted"}
"""The same, for a product whose reports come later: a sent recipient rests in `submitted`."""

Stored = tuple[str, datetime | None, list[DeliveryEvent]]
"""A recipient as the store has it: its vendor, its not_before, and its history."""


def shanghai_time(text: str) -> datetime:
    """A vendor's `YYYY-mm-dd HH:MM:SS`, which is Shanghai time."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)


def parse_time(value: str) -> datetime:
    """A time as the API answers it (ISO 8601)."""
    return datetime.fromisoformat(value)


def deferred_for(events: list[DeliveryEvent], not_before: datetime | None) -> timedelta:
    """How long a recipient was deferred for: its not_before minus its last deferral's time."""
    deferral = [e for e in events if e.to_status == "deferred"][-1]
    assert not_before is not None
    return not_before - deferral.at


class Scene:
    """One test's view of the system: what it submitted and the sandbox knobs it turned."""

    account_name: ClassVar[str]
    """The product's account in the sandbox (`/_sandbox/state`)."""
    send_path: ClassVar[str]
    """The sandbox path of the product's send: where faults and request counts default to."""
    breaker_keys: ClassVar[tuple[str, ...]]
    """Redis keys of the breakers the tidy-up closes; the first is the product's own."""
    restored_state: ClassVar[tuple[str, ...]] = ()
    """Sandbox-wide state (besides the account's status, IP block and balance) put back."""

    def __init__(self, system: System, engine: Engine) -> None:
        self.system = system
        self.engine = engine
        self.jobs: list[str] = []
        self.client = httpx.Client(timeout=10)
        self.started = time.time()

    @classmethod
    def staged(cls, system: System, engine: Engine) -> Iterator[Self]:
        """The body of a module's autouse `scene` fixture: a scene, tidied after the test."""
        before = system.sandbox("GET", "/_sandbox/state")
        scene = cls(system, engine)
        yield scene
        scene.tidy(before)

    def tidy(self, before: dict[str, Any]) -> None:
        """Undo what the test did, `before` being the sandbox's state when it started."""
        for job_id in self.jobs:  # nothing a test left waiting may call the vendor later
            self.client.post(f"{self.system.api_url}/v1/messages/{job_id}/cancel")
        self.client.close()
        self.redis().delete(*self.breaker_keys)
        self.system.sandbox("POST", "/_sandbox/faults", json={})
        self.restore(before)

    def restore(self, before: dict[str, Any]) -> None:
        """Put the sandbox account (and `restored_state`) back as `before` had it."""
        account = before["accounts"][self.account_name]
        self.account(
            status=account["status"],
            ip_blocked=account["ip_blocked"],
            balance=account["balance"],
            **{name: before[name] for name in self.restored_state},
        )

    def redis(self) -> redis.Redis:
        """herald's redis (the module's own database), answering str."""
        return redis.Redis.from_url(self.system.env["HERALD_REDIS_URL"], decode_responses=True)

    # --- acting ---

    def track(self, job_id: str) -> str:
        """Remember a submitted job, for the tidy-up to cancel; returns it."""
        self.jobs.append(job_id)
        return job_id

    def fault(self, reply: str | None, *, times: int | None = 1, path: str | None = None) -> None:
        """The next `times` requests (None: all, until cleared) to `path` (the send path unless
        told) answer `reply` (None: the sandbox's own transient error for that vendor)."""
        self.system.sandbox(
            "POST",
            "/_sandbox/faults",
            json={
                "error_rate": 1,
                "errors": ["reply"],
                "reply_message": reply,
                "paths": [path or self.send_path],
                "limit": times,
            },
        )

    def account(self, **changes: Any) -> None:
        """Change the product's sandbox account (and any sandbox-wide state named)."""
        self.system.sandbox(
            "POST", "/_sandbox/state", json={"account": self.account_name, **changes}
        )

    def refuse_account(self, provoke: str, reply: str) -> None:
        """Have the product refuse the account on the next send: by a fault answering `reply`
        ("fault"), or by the account's state ("locked", "ip blocked", "no balance")."""
        if provoke == "fault":
            self.fault(reply)
        elif provoke == "locked":
            self.account(status="locked")
        elif provoke == "ip blocked":
            self.account(ip_blocked=True)
        else:
            self.account(balance=0)

    # --- observing: the API ---

    def recipients(
        self, job_id: str, *, until: set[str], timeout_s: float = 10
    ) -> list[dict[str, Any]]:
        """The job's recipients, once every one's status is one of `until`."""
        deadline = time.monotonic() + timeout_s
        while True:
            recipients = self.system.job(job_id)["recipients"]
            if all(r["status"] in until for r in recipients):
                return [dict(r) for r in recipients]
            if time.monotonic() > deadline:
                raise AssertionError(f"still {recipients}\n{self.system.logs_tail()}")
            time.sleep(0.1)

    def recipient(self, job_id: str, *, until: set[str], timeout_s: float = 10) -> dict[str, Any]:
        """The job's only recipient, once its status is one of `until`."""
        (recipient,) = self.recipients(job_id, until=until, timeout_s=timeout_s)
        return recipient

    def settled(self, job_id: str, timeout_s: float = 15) -> dict[str, Any]:
        """The job's only recipient, once it is final (or unknown)."""
        (job,) = self.system.wait_settled([job_id], timeout_s=timeout_s)
        (recipient,) = job["recipients"]
        return dict(recipient)

    def inbound(self, phone: str, count: int = 1, timeout_s: float = 10) -> list[dict[str, Any]]:
        """GET /v1/inbound for `phone`, once it lists at least `count` messages (newest first)."""
        deadline = time.monotonic() + timeout_s
        while True:
            response = self.client.get(f"{self.system.api_url}/v1/inbound", params={"phone": phone})
            response.raise_for_status()
            rows = list(response.json())
            if len(rows) >= count or time.monotonic() > deadline:
                return rows
            time.sleep(0.1)

    def suppressed(self) -> dict[str, str]:
        """GET /v1/suppressions: each suppressed phone's reason."""
        response = self.client.get(f"{self.system.api_url}/v1/suppressions")
        response.raise_for_status()
        return {row["phone"]: row["reason"] for row in response.json()}

    def wait_suppressed(self, phone: str, timeout_s: float = 10) -> None:
        """Wait (at most `timeout_s`) for `phone` to be suppressed; the test asserts it is."""
        deadline = time.monotonic() + timeout_s
        while phone not in self.suppressed() and time.monotonic() < deadline:
            time.sleep(0.1)

    # --- observing: the store ---

    def deliveries(self, job_id: str) -> list[Stored]:
        """From the store, per recipient: its vendor, its not_before, and its history."""
        with Session(self.engine) as session:
            rows = []
            for delivery in deliveries_of(session, job_id=job_id):
                assert delivery.id is not None
                events = events_of(session, delivery_ids=[delivery.id])
                rows.append((delivery.vendor, delivery.not_before, events))
            return rows

    def stored(self, job_id: str, phone: str | None = None) -> Stored:
        """From the store: the vendor, not_before and history of the job's only recipient (or
        of its recipient `phone`)."""
        with Session(self.engine) as session:
            (delivery,) = [
                d for d in deliveries_of(session, job_id=job_id) if phone in (None, d.phone)
            ]
            assert delivery.id is not None
            return (
                delivery.vendor,
                delivery.not_before,
                events_of(session, delivery_ids=[delivery.id]),
            )

    def history(self, job_id: str, phone: str | None = None) -> list[str]:
        """The statuses the recipient went through, from the store."""
        return [e.to_status for e in self.stored(job_id, phone)[2]]

    def deferred_for(self, job_id: str, phone: str | None = None) -> timedelta:
        """How long the recipient was deferred for: its not_before minus the deferral's time."""
        _, not_before, events = self.stored(job_id, phone)
        return deferred_for(events, not_before)

    def first_deferral(self, job_id: str, timeout_s: float = 10) -> DeliveryEvent:
        """The recipient's first move to `deferred`, once it happened."""
        deadline = time.monotonic() + timeout_s
        while True:
            deferrals = [e for e in self.stored(job_id)[2] if e.to_status == "deferred"]
            if deferrals:
                return deferrals[0]
            assert time.monotonic() < deadline, f"never deferred\n{self.system.logs_tail()}"
            time.sleep(0.1)

    # --- observing: the sandbox and redis ---

    def sends_to(self, phone: str) -> list[dict[str, Any]]:
        """What the sandbox sent to `phone` (its send log, every vendor)."""
        return [s for s in self.system.sandbox_sends() if s["phone"] == phone]

    def requests_since(self, start: float, path: str | None = None) -> list[dict[str, Any]]:
        """The sandbox's log of requests to `path` (the send path unless told) since `start`."""
        logged = self.system.sandbox("GET", "/_sandbox/requests")
        path = path or self.send_path
        return [r for r in logged if r["path"] == path and r["start"] >= start]

    def requests(self, path: str | None = None) -> list[dict[str, Any]]:
        """The sandbox's log of this test's requests to `path` (the send path unless told)."""
        return self.requests_since(self.started, path)

    def pushes(
        self, kind: str, key: str, value: str, timeout_s: float = 10
    ) -> list[dict[str, str]]:
        """The fields of the pushes of `kind` whose `key` is `value`, once the sandbox delivered
        at least one (each must have been delivered)."""
        deadline = time.monotonic() + timeout_s
        while True:
            done = self.system.sandbox("GET", "/_sandbox/pushes")["done"]
            found = [p for p in done if p["kind"] == kind and p["fields"][key] == value]
            if found:
                assert all(p["result"] == "delivered" for p in found), found
                return [dict(p["fields"]) for p in found]
            assert time.monotonic() < deadline, f"no {kind} push with {key}={value}"
            time.sleep(0.1)

    def pushed(self, kind: str, key: str, value: str, timeout_s: float = 10) -> dict[str, str]:
        """The fields of the one push of `kind` whose `key` is `value`, once delivered."""
        (push,) = self.pushes(kind, key, value, timeout_s)
        return push

    def breaker(self) -> tuple[str | None, float]:
        """Why herald's breaker of the product is open (None: closed), and its seconds left."""
        client = self.redis()
        reason = client.get(self.breaker_keys[0])
        left_ms = int(client.pttl(self.breaker_keys[0]))
        return (None if reason is None else str(reason)), left_ms / 1000


# --- what several documents assert alike ------------------------------------------------------


def assert_waiting_for_the_vendor(scene: Scene, job_id: str, reply: str) -> None:
    """The job's only recipient waits out the vendor-blocked cooldown with Veesing's `reply`
    (its first attempt), and the product's breaker is open for it."""
    recipient = scene.recipient(job_id, until=RESTING)
    assert recipient["status"] == "deferred"
    assert recipient["last_error"] == f"veesing: {reply} (attempt 1)"
    waited = scene.deferred_for(job_id)
    assert timedelta(seconds=COOLDOWN_S - 1) <= waited <= timedelta(seconds=COOLDOWN_S)
    reason, left_s = scene.breaker()
    assert reason == reply
    assert 0 < left_s <= COOLDOWN_S


def assert_retried_once_then_delivered(scene: Scene, job_id: str, deferral: str) -> dict[str, Any]:
    """The job's only recipient was deferred once (saying `deferral`), sent again and
    delivered, its history ending either way a receipt may overtake the worker's own
    `submitted`; returns the recipient."""
    recipient = scene.settled(job_id)
    assert recipient["status"] == "delivered"
    assert recipient["last_error"] is None
    _, _, events = scene.stored(job_id)
    assert [(e.to_status, e.detail) for e in events if e.to_status == "deferred"] == [
        ("deferred", deferral)
    ]
    assert [e.to_status for e in events][:6] == [
        "claimed",
        "sending",
        "deferred",
        "queued",
        "claimed",
        "sending",
    ]
    assert [e.to_status for e in events][6:] in (["submitted", "delivered"], ["delivered"])
    return recipient


# --- Veesing (SMS, voice, MMS: one account scheme, one set of replies) ---------------------------

LOCKED = "您的账户已被锁定,请联系您的专属客服"
"""Veesing's reply for a locked account."""
VEESING_BALANCE_ERRORS = [
    ("wrong key", VendorBlocked, "账号或密码错误"),
    ("no credentials", MessageRejected, "缺少参数"),
    ("locked", VendorBlocked, LOCKED),
    ("ip blocked", VendorBlocked, "IP受限"),
    ("fault", TransientError, "未知原因,请联系客服"),
]
"""(provoke, error, reply): each documented balance error, as `VeesingScene.refuse_balance`
provokes it, and the class it raises."""


class VeesingScene(Scene):
    """A scene of one of Veesing's products, whose adapters share the Veesing credentials."""

    def credentials(self) -> VeesingCredentials:
        """herald's own Veesing credentials (the sandbox accepts them)."""
        env = self.system.env
        return VeesingCredentials(env["HERALD_VEESING_APP_ID"], env["HERALD_VEESING_APP_KEY"])

    def refuse_balance(self, provoke: str, reply: str, path: str) -> VeesingCredentials:
        """Have the sandbox refuse the next balance query at `path` as `provoke` says (one of
        `VEESING_BALANCE_ERRORS`); returns the credentials to ask with."""
        credentials = self.credentials()
        if provoke == "wrong key":
            credentials = VeesingCredentials(credentials.app_id, "not-the-key")
        elif provoke == "no credentials":
            credentials = VeesingCredentials("", "")
        elif provoke == "locked":
            self.account(status="locked")
        elif provoke == "ip blocked":
            self.account(ip_blocked=True)
        else:
            self.fault(reply, path=path)
        return credentials

    def use_up_the_number_day(self, send: Callable[[], object]) -> int:
        """Call `send` (a direct send to one number) until the sandbox refuses it with its
        per-number daily cap.

        The sandbox clock moves 61 s between sends (the minute rule), starting at the next
        Shanghai noon so that every send falls on one vendor day. Returns how many were sent.
        """
        now = datetime.now(SHANGHAI)
        noon = now.replace(hour=12, minute=0, second=0, microsecond=0)
        if noon <= now:
            noon += timedelta(days=1)
        base_s = (noon - now).total_seconds()
        for sent in range(50):
            self.account(clock_offset_s=base_s + 61 * sent)
            try:
                send()
            except QuotaExceeded as exc:
                assert exc.reply == "该号码今日发送次数已达上限"
                return sent
        raise AssertionError("the sandbox never applied its per-number daily cap")
