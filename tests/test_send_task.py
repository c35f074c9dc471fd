"""Unit tests of the send task's body: each vendor outcome class lands in the right status.

The task body (`deliver_job`) is called directly with a fake sender; delivery through real
worker processes is in tests/integration.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta

import pytest
import redis

import tasks.send
from tasks.senders import Sender
from tests.conftest import REDIS
from tests.support import SettingsEnv
from worker.clock import SHANGHAI
from worker.enums import CapPolicy, Channel, DeliveryStatus, Purpose
from worker.errors import (
    AmbiguousOutcome,
    MessageRejected,
    QuotaExceeded,
    RateLimited,
    RecipientRejected,
    TransientError,
    UnknownReply,
    VendorBlocked,
    VendorError,
)
from worker.redis_client import redis_client
from worker.settings import get_settings
from worker.store import (
    Delivery,
    NewJob,
    create_job,
    deliveries_of,
    events_of,
    get_job,
    session_scope,
    suppress,
    utcnow,
)

PHONES = ["13800138000", "13900139000"]
pytestmark = pytest.mark.usefixtures("store_url", "fresh_limits")
LIMITS_DB = 14


@pytest.fixture
def fresh_limits(settings_env: SettingsEnv, redis_url: str) -> Iterator[None]:
    """Limits on a database of the run's own Redis, emptied for each test."""
    url = REDIS.url(LIMITS_DB)
    settings_env.setenv("HERALD_LIMITS_REDIS_URL", url)
    redis_client.cache_clear()
    redis.Redis.from_url(url).flushdb()
    yield
    redis_client.cache_clear()


class FakeVendor:
    """Answers each call with the next planned outcome and records what it was asked."""

    def __init__(self, *outcomes: str | VendorError) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[list[str]] = []

    def __call__(self, batch: Sequence[Delivery]) -> str:
        self.calls.append([d.phone for d in batch])
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, VendorError):
            raise outcome
        return outcome


@pytest.fixture
def vendor(monkeypatch: pytest.MonkeyPatch) -> FakeVendor:
    fake = FakeVendor()
    monkeypatch.setattr(
        tasks.send, "sender_for", lambda _job, _vendor: Sender(get_settings().batch_size, fake)
    )
    return fake


def stored_job(**overrides: object) -> str:
    fields: dict[str, object] = {
        "channel": Channel.SMS,
        "vendor": "veesing",
        "content": "【Herald】您好",
        "phones": PHONES,
    }
    fields.update(overrides)
    with session_scope() as session:
        job, _ = create_job(session, new=NewJob(**fields), now=utcnow())  # type: ignore[arg-type]
        return job.id


def deliveries(job_id: str) -> list[Delivery]:
    with session_scope() as session:
        return deliveries_of(session, job_id=job_id)


def test_an_accepted_batch_is_submitted_with_the_vendor_reference(vendor: FakeVendor) -> None:
    vendor.outcomes = ["3313746"]
    job_id = stored_job()

    tasks.send.deliver_job(job_id)

    assert vendor.calls == [PHONES]
    assert [(d.status, d.vendor_ref) for d in deliveries(job_id)] == [
        (DeliveryStatus.SUBMITTED, "3313746")
    ] * 2


def test_a_second_run_of_the_same_task_calls_the_vendor_no_more(vendor: FakeVendor) -> None:
    vendor.outcomes = ["1"]
    job_id = stored_job()

    tasks.send.deliver_job(job_id)
    tasks.send.deliver_job(job_id)

    assert len(vendor.calls) == 1


def test_recipients_are_sent_in_batches_of_the_configured_size(
    vendor: FakeVendor, settings_env: SettingsEnv
) -> None:
    settings_env.setenv("HERALD_BATCH_SIZE", "2")
    phones = [f"1380013800{n}" for n in range(5)]
    vendor.outcomes = ["a", "b", "c"]

    tasks.send.deliver_job(stored_job(phones=phones))

    assert vendor.calls == [phones[0:2], phones[2:4], phones[4:5]]


def test_the_minute_rule_defers_without_spending_the_error_budget(vendor: FakeVendor) -> None:
    minute_rule = "相同手机号码一分钟之内只可发送一次"
    vendor.outcomes = [RateLimited("veesing", minute_rule, retry_after_s=60)]
    job_id = stored_job()
    before = utcnow()

    tasks.send.deliver_job(job_id)

    for delivery in deliveries(job_id):
        assert delivery.status is DeliveryStatus.DEFERRED
        assert delivery.not_before is not None
        assert delivery.not_before >= before + timedelta(seconds=60)
    with session_scope() as session:
        assert get_job(session, job_id=job_id).error_attempts == 0  # type: ignore[union-attr]


def test_a_daily_cap_defers_to_the_next_shanghai_midnight(vendor: FakeVendor) -> None:
    vendor.outcomes = [QuotaExceeded("veesing", "该号码今日发送次数已达上限", scope="number")]
    job_id = stored_job()

    tasks.send.deliver_job(job_id)

    not_before = deliveries(job_id)[0].not_before
    assert not_before is not None
    local = not_before.astimezone(SHANGHAI)
    assert (local.hour, local.minute, local.second) == (0, 0, 0)


@pytest.mark.parametrize(
    ("error", "phones"),
    [
        (RecipientRejected("veesing", "手机号码格式不正确"), PHONES[:1]),
        (MessageRejected("veesing", "参数错误"), PHONES),
    ],
)
def test_a_permanent_refusal_fails_the_batch_with_the_vendor_words(
    vendor: FakeVendor, error: VendorError, phones: list[str]
) -> None:
    vendor.outcomes = [error]
    job_id = stored_job(phones=phones)

    tasks.send.deliver_job(job_id)

    assert {(d.status, d.last_error) for d in deliveries(job_id)} == {
        (DeliveryStatus.FAILED, str(error))
    }


def test_a_batch_refused_for_one_unnamed_number_is_resent_one_by_one(
    vendor: FakeVendor,
) -> None:
    bad_number = RecipientRejected("veesing", "手机号码格式不正确")
    vendor.outcomes = [bad_number, "T-ALONE", bad_number]
    job_id = stored_job()

    tasks.send.deliver_job(job_id)

    assert vendor.calls == [PHONES, PHONES[:1], PHONES[1:]]
    good, bad = deliveries(job_id)
    assert (good.status, good.vendor_ref) == (DeliveryStatus.SUBMITTED, "T-ALONE")
    assert (bad.status, bad.last_error) == (DeliveryStatus.FAILED, str(bad_number))


def test_an_ambiguous_call_is_unknown_and_not_resent(vendor: FakeVendor) -> None:
    vendor.outcomes = [AmbiguousOutcome("veesing", "ReadTimeout on POST /smsApi/group")]
    job_id = stored_job()

    tasks.send.deliver_job(job_id)
    tasks.send.deliver_job(job_id)

    assert len(vendor.calls) == 1
    assert {d.status for d in deliveries(job_id)} == {DeliveryStatus.UNKNOWN}


def test_resend_ambiguous_defers_the_batch_instead(
    vendor: FakeVendor, settings_env: SettingsEnv
) -> None:
    settings_env.setenv("HERALD_RESEND_AMBIGUOUS", "true")
    vendor.outcomes = [AmbiguousOutcome("veesing", "HTTP 502 on POST /smsApi/group")]
    job_id = stored_job()

    tasks.send.deliver_job(job_id)

    assert {d.status for d in deliveries(job_id)} == {DeliveryStatus.DEFERRED}


def test_transient_errors_retry_until_the_budget_is_spent(
    vendor: FakeVendor, settings_env: SettingsEnv
) -> None:
    settings_env.setenv("HERALD_MAX_ERROR_ATTEMPTS", "3")
    vendor.outcomes = [TransientError("veesing", "未知原因,请联系客服")] * 3
    job_id = stored_job()

    for attempt in range(3):
        tasks.send.deliver_job(job_id)
        expected = DeliveryStatus.FAILED if attempt == 2 else DeliveryStatus.DEFERRED
        assert {d.status for d in deliveries(job_id)} == {expected}
        requeue(job_id)

    assert "gave up after 3 attempts" in (deliveries(job_id)[0].last_error or "")


def test_an_undocumented_reply_has_a_smaller_budget(
    vendor: FakeVendor, settings_env: SettingsEnv
) -> None:
    settings_env.setenv("HERALD_UNKNOWN_REPLY_ATTEMPTS", "1")
    vendor.outcomes = [UnknownReply("veesing", "returnStatus 0: '系统维护'")]
    job_id = stored_job()

    tasks.send.deliver_job(job_id)

    assert {d.status for d in deliveries(job_id)} == {DeliveryStatus.FAILED}


def test_a_blocked_vendor_defers_for_the_cooldown(
    vendor: FakeVendor, settings_env: SettingsEnv
) -> None:
    settings_env.setenv("HERALD_VENDOR_BLOCKED_COOLDOWN_S", "600")
    vendor.outcomes = [VendorBlocked("veesing", "余额不足")]
    job_id = stored_job()
    before = utcnow()

    tasks.send.deliver_job(job_id)

    delivery = deliveries(job_id)[0]
    assert delivery.status is DeliveryStatus.DEFERRED
    assert delivery.not_before is not None
    assert delivery.not_before >= before + timedelta(seconds=600)


def test_an_expired_job_fails_without_calling_the_vendor(vendor: FakeVendor) -> None:
    job_id = stored_job(expires_at=utcnow() - timedelta(seconds=1))

    tasks.send.deliver_job(job_id)

    assert vendor.calls == []
    assert {(d.status, d.last_error) for d in deliveries(job_id)} == {
        (DeliveryStatus.FAILED, "expired")
    }


def requeue(job_id: str) -> None:
    """What beat's release does once not_before has passed."""
    from sqlmodel import col

    from worker.store import move_deliveries

    with session_scope() as session:
        move_deliveries(
            session,
            where=col(Delivery.job_id) == job_id,
            from_statuses=[DeliveryStatus.DEFERRED],
            to=DeliveryStatus.QUEUED,
            now=utcnow(),
        )


def test_a_number_sent_a_moment_ago_is_held_by_the_limits_without_calling_the_vendor(
    vendor: FakeVendor,
) -> None:
    vendor.outcomes = ["1"]
    tasks.send.deliver_job(stored_job(phones=["13800138000"]))
    second = stored_job(phones=["13800138000", "13900139000"])
    vendor.outcomes = ["2"]

    tasks.send.deliver_job(second)

    assert vendor.calls == [["13800138000"], ["13900139000"]]
    held, sent = deliveries(second)
    assert held.status is DeliveryStatus.DEFERRED
    assert "one-message-per-minute" in (held.last_error or "")
    assert sent.status is DeliveryStatus.SUBMITTED


def test_a_call_the_vendor_refused_gives_its_reservation_back(vendor: FakeVendor) -> None:
    vendor.outcomes = [TransientError("veesing", "HTTP 503 on POST /smsApi/group"), "1"]
    job_id = stored_job(phones=["13800138000"])

    tasks.send.deliver_job(job_id)
    requeue(job_id)
    tasks.send.deliver_job(job_id)

    assert len(vendor.calls) == 2
    assert deliveries(job_id)[0].status is DeliveryStatus.SUBMITTED


def test_marketing_skips_a_suppressed_number_but_a_code_still_goes(vendor: FakeVendor) -> None:
    with session_scope() as session:
        suppress(session, phone="13800138000", reason="replied 'TD' via veesing", now=utcnow())
    vendor.outcomes = ["1", "2"]
    marketing = stored_job(phones=["13800138000", "13900139000"])
    code = stored_job(phones=["13800138000"], purpose=Purpose.VERIFICATION)

    tasks.send.deliver_job(marketing)
    tasks.send.deliver_job(code)

    assert vendor.calls == [["13900139000"], ["13800138000"]]
    skipped = deliveries(marketing)[0]
    assert (skipped.status, skipped.last_error) == (
        DeliveryStatus.FAILED,
        "suppressed: replied 'TD' via veesing",
    )


@pytest.fixture
def two_vendors(
    monkeypatch: pytest.MonkeyPatch, settings_env: SettingsEnv
) -> dict[str, FakeVendor]:
    """Veesing and Chuangrui both configured for SMS, each a fake."""
    settings_env.setenv("HERALD_CHUANGRUI_URL", "http://chuangrui.invalid/sms")
    settings_env.setenv("HERALD_CHUANGRUI_NAME", "name")
    settings_env.setenv("HERALD_CHUANGRUI_PWD", "pwd")
    fakes = {"veesing": FakeVendor(), "chuangrui": FakeVendor()}
    monkeypatch.setattr(
        tasks.send,
        "sender_for",
        lambda _job, vendor: Sender(get_settings().batch_size, fakes[vendor]),
    )
    return fakes


def test_a_vendor_refusing_the_account_opens_its_breaker_and_the_batch_fails_over(
    two_vendors: dict[str, FakeVendor],
) -> None:
    two_vendors["veesing"].outcomes = [VendorBlocked("veesing", "余额不足")]
    two_vendors["chuangrui"].outcomes = ["SENDID-1", "SENDID-2"]
    first = stored_job(phones=["13800138000"])
    second = stored_job(phones=["13900139000"])

    tasks.send.deliver_job(first)
    tasks.send.deliver_job(second)

    assert two_vendors["veesing"].calls == [["13800138000"]]
    assert two_vendors["chuangrui"].calls == [["13800138000"], ["13900139000"]]
    for job_id in (first, second):
        (delivery,) = deliveries(job_id)
        assert (delivery.status, delivery.vendor) == (DeliveryStatus.SUBMITTED, "chuangrui")


def test_a_job_that_forbids_failover_waits_for_the_breaker_instead(
    two_vendors: dict[str, FakeVendor],
) -> None:
    two_vendors["veesing"].outcomes = [VendorBlocked("veesing", "IP受限")]
    job_id = stored_job(phones=["13800138000"], allow_failover=False)

    tasks.send.deliver_job(job_id)

    (delivery,) = deliveries(job_id)
    assert (delivery.status, delivery.vendor) == (DeliveryStatus.DEFERRED, "veesing")
    assert two_vendors["chuangrui"].calls == []


@pytest.mark.parametrize(
    ("policy", "status", "vendor"),
    [
        (CapPolicy.FAILOVER, DeliveryStatus.SUBMITTED, "chuangrui"),
        (CapPolicy.DEFER, DeliveryStatus.DEFERRED, "veesing"),
        (CapPolicy.FAIL, DeliveryStatus.FAILED, "veesing"),
    ],
)
def test_a_vendor_daily_cap_follows_the_jobs_policy(
    two_vendors: dict[str, FakeVendor], policy: CapPolicy, status: DeliveryStatus, vendor: str
) -> None:
    two_vendors["veesing"].outcomes = [
        QuotaExceeded("veesing", "当日发送量已超出最大发送限制", scope="account")
    ]
    two_vendors["chuangrui"].outcomes = ["SENDID-1"]
    job_id = stored_job(phones=["13800138000"], on_daily_cap=policy)

    tasks.send.deliver_job(job_id)

    (delivery,) = deliveries(job_id)
    assert (delivery.status, delivery.vendor) == (status, vendor)
    with session_scope() as session:
        history = [e.detail or "" for e in events_of(session, delivery_ids=[delivery.id])]
    assert any("当日发送量已超出最大发送限制" in detail for detail in history)


def test_our_own_per_number_cap_holds_before_the_vendor_is_asked(
    two_vendors: dict[str, FakeVendor], settings_env: SettingsEnv
) -> None:
    settings_env.setenv(
        "HERALD_LIMITS", '{"veesing:sms": {"per_number_daily": 1, "minute_s": 0.001}}'
    )
    two_vendors["veesing"].outcomes = ["T1"]
    tasks.send.deliver_job(stored_job(phones=["13800138000"]))
    second = stored_job(phones=["13800138000"], on_daily_cap=CapPolicy.DEFER)

    tasks.send.deliver_job(second)

    assert two_vendors["veesing"].calls == [["13800138000"]]
    (delivery,) = deliveries(second)
    assert delivery.status is DeliveryStatus.DEFERRED
    assert "daily cap of this number" in (delivery.last_error or "")
