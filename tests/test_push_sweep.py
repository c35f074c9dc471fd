"""Unit tests of the push sweep: a poison push is quarantined alone, unmatched pushes never
starve matched ones, and no NUL character reaches the store (on SQLite and on PostgreSQL)."""

from __future__ import annotations

import hashlib

import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, select

import tasks.pushes
from tasks.maintenance import sweep
from tests.conftest import CALLBACK_TOKEN
from worker.delivery_reports import VendorNews
from worker.enums import Channel, DeliveryStatus
from worker.store import (
    Delivery,
    InboundMessage,
    NewJob,
    ReportOutcome,
    VendorPush,
    claim_for_sending,
    create_job,
    deliveries_of,
    mark_sending,
    move_deliveries,
    push_digest,
    record_push,
    session_scope,
    utcnow,
)

pytestmark = pytest.mark.usefixtures("store_url", "redis_url")


def store_push(payload: dict[str, str], *, vendor: str = "veesing", kind: str = "sms") -> int:
    with session_scope() as session:
        push, _ = record_push(session, vendor=vendor, kind=kind, payload=payload, now=utcnow())
        assert push.id is not None
        return push.id


def store_push_as_is(payload: dict[str, str]) -> int:
    """A push stored without `record_push`'s care, as one stored by an older herald."""
    with session_scope() as session:
        push = VendorPush(
            vendor="veesing",
            kind="sms",
            payload=payload,
            digest=hashlib.sha256(repr(payload).encode()).hexdigest(),
            received_at=utcnow(),
        )
        session.add(push)
        session.flush()
        assert push.id is not None
        return push.id


def reply(n: int) -> dict[str, str]:
    return {"mobile": f"1380013{n:04d}", "content": f"reply {n}", "receivetime": ""}


def pushes(ids: list[int]) -> list[VendorPush]:
    with session_scope() as session:
        found = session.exec(select(VendorPush).where(col(VendorPush.id).in_(ids)))
        by_id = {p.id: p for p in found}
    return [by_id[i] for i in ids]


def test_a_push_whose_apply_raises_is_quarantined_and_the_others_are_applied(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def parse_with_a_bug(payload: dict[str, str]) -> list[VendorNews]:
        raise KeyError(payload["missing"])  # what a parser's own bug would raise: no typed error

    broken = tasks.pushes.PushKind(parse=parse_with_a_bug, summary=tasks.pushes.one_record)
    monkeypatch.setitem(tasks.pushes.PUSH_KINDS, ("fivec", "reports"), broken)
    good = [store_push(reply(n)) for n in range(2)]
    poison = store_push({"fetched_at": "x"}, vendor="fivec", kind="reports")
    good += [store_push(reply(n)) for n in range(2, 5)]

    sweep()
    second = sweep()

    assert [p.outcome for p in pushes(good)] == ["inbound stored"] * 5
    (quarantined,) = pushes([poison])
    assert quarantined.applied_at is not None
    assert quarantined.outcome == "quarantined: KeyError"
    assert second["pushes"] == 0


@pytest.mark.parametrize(
    "poison",
    [
        {"mobile": "13800138000", "content": "hi", "taskid": "9" * 200},  # longer than its column
        {"mobile": "13800138000", "content": "T\x00D"},  # NUL, stored by an older herald
    ],
    ids=["huge-field", "nul"],
)
def test_a_push_the_database_refuses_is_quarantined_alone(
    store_url: str, poison: dict[str, str]
) -> None:
    if store_url.startswith("sqlite"):
        pytest.skip("SQLite keeps long and NUL-bearing text as it is")
    good = [store_push(reply(n)) for n in range(3)]
    bad = store_push_as_is(poison)
    good += [store_push(reply(n)) for n in range(3, 6)]

    sweep()

    assert [p.outcome for p in pushes(good)] == ["inbound stored"] * 6
    assert pushes([bad])[0].outcome == "quarantined: DataError"
    with session_scope() as session:
        assert len(session.exec(select(InboundMessage)).all()) == 6


def submitted_job(phones: list[str], vendor_ref: str) -> str:
    now = utcnow()
    new = NewJob(channel=Channel.SMS, vendor="veesing", content="【Herald】您好", phones=phones)
    with session_scope() as session:
        job, _ = create_job(session, new=new, now=now)
        batch = claim_for_sending(session, job_id=job.id, vendor="veesing", now=now, limit=100)
        mark_sending(session, delivery_ids=[d.id for d in batch], now=now)
        move_deliveries(
            session,
            where=col(Delivery.job_id) == job.id,
            from_statuses=[DeliveryStatus.SENDING],
            to=DeliveryStatus.SUBMITTED,
            now=now,
            vendor_ref=vendor_ref,
            submitted_at=now,
        )
        return job.id


def receipt(phone: str, vendor_ref: str) -> dict[str, str]:
    return {"mobile": phone, "taskid": vendor_ref, "status": "1", "code": "DELIVRD"}


def delivered(job_id: str) -> int:
    with session_scope() as session:
        rows = deliveries_of(session, job_id=job_id)
    return sum(d.status == DeliveryStatus.DELIVERED for d in rows)


PHONES = [f"1390013{n:04d}" for n in range(20)]


def store_tried_unmatched(count: int) -> None:
    """`count` receipts for batches herald never made, already tried by earlier sweeps."""
    payloads = [receipt(f"1500015{n:04d}", f"NOBODY-{n}") for n in range(count)]
    with session_scope() as session:
        session.add_all(
            VendorPush(
                vendor="veesing",
                kind="sms",
                payload=payload,
                digest=push_digest("veesing", "sms", payload),
                received_at=utcnow(),
                outcome=ReportOutcome.UNMATCHED,
            )
            for payload in payloads
        )


def test_unmatched_pushes_stored_first_do_not_keep_new_receipts_waiting() -> None:
    store_tried_unmatched(510)
    job_id = submitted_job(PHONES, "R-1")
    for phone in PHONES:
        store_push(receipt(phone, "R-1"))

    sweep()

    assert delivered(job_id) == 20


def test_receipts_that_came_before_their_batch_id_are_retried_among_many_unmatched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tasks.pushes, "RETRIES_PER_SWEEP", 25)
    store_tried_unmatched(110)
    early = [store_push(receipt(phone, "R-2")) for phone in PHONES]
    for push_id in early:  # the receipts beat our commit of the batch id: unmatched for now
        assert tasks.pushes.apply_push(push_id) == ReportOutcome.UNMATCHED
    job_id = submitted_job(PHONES, "R-2")

    for _ in range(-(-(110 + 20) // 25)):  # one round of every unmatched push
        sweep()

    assert delivered(job_id) == 20
    assert {p.outcome for p in pushes(early)} == {"applied"}


def test_a_nul_in_a_push_is_stored_escaped_and_the_push_applied() -> None:
    push_id = store_push({"mobile": "13800138000", "content": "T\x00D", "x\x00": "1"})

    sweep()

    (push,) = pushes([push_id])
    assert push.payload == {"mobile": "13800138000", "content": "T\\u0000D", "x\\u0000": "1"}
    assert push.outcome == "inbound stored"
    with session_scope() as session:
        assert session.exec(select(InboundMessage.content)).one() == "T\\u0000D"


def test_a_pushed_nul_reaches_the_store_escaped_through_the_api() -> None:
    from worker.api import api

    with TestClient(api) as client:
        response = client.post(
            f"/callbacks/veesing/sms/{CALLBACK_TOKEN}",
            data={"mobile": "13800138000", "content": "退\x00订"},
        )

    assert response.status_code == 200
    with session_scope() as session:
        push = session.exec(select(VendorPush)).one()
    assert push.payload["content"] == "退\\u0000订"


def test_a_unique_key_broken_by_a_concurrent_writer_is_tried_once_more_before_quarantine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sqlalchemy.exc import IntegrityError

    real = tasks.pushes.apply_in_transaction
    raised: list[int] = []

    def racing(push_id: int, **kwargs: object) -> str:
        if len(raised) < 1:
            raised.append(push_id)
            raise IntegrityError("INSERT INTO suppression", {}, Exception("duplicate key"))
        return real(push_id, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(tasks.pushes, "apply_in_transaction", racing)
    raced = store_push({"mobile": "13800138000", "content": "TD"})

    assert tasks.pushes.apply_push(raced) == "inbound stored; number suppressed"

    def always(push_id: int, **kwargs: object) -> str:
        raise IntegrityError("INSERT INTO suppression", {}, Exception("duplicate key"))

    monkeypatch.setattr(tasks.pushes, "apply_in_transaction", always)
    stuck = store_push({"mobile": "13900139000", "content": "TD"})

    assert tasks.pushes.apply_push(stuck) == "quarantined: IntegrityError"
    assert pushes([stuck])[0].outcome == "quarantined: IntegrityError"
