"""Unit tests of pushes applied in batches (tasks/pushes.py `apply_batch`, tasks/push_drain.py)
and of the doorbell that wakes the applier (worker/push_doorbell.py), on SQLite and PostgreSQL.

The batch must come to exactly what applying the same pushes one at a time, in the order
received, comes to: the same statuses, report fields, history and push outcomes."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import col, select

import tasks.push_drain
import tasks.pushes
import worker.push_doorbell
from tests.conftest import CALLBACK_TOKEN
from worker.api import callbacks
from worker.delivery_reports import VendorNews
from worker.enums import Channel, DeliveryStatus
from worker.errors import PushesRaced
from worker.names import PUSH_DOORBELL_KEY
from worker.redis_client import redis_client
from worker.store import (
    Delivery,
    DeliveryEvent,
    InboundMessage,
    NewJob,
    Suppression,
    VendorPush,
    create_job,
    record_push,
    session_scope,
    utcnow,
)
from worker.store.pushes import mark_pushes, take_pushes

pytestmark = pytest.mark.usefixtures("store_url", "redis_url")

LATER = "2026-11-29 10:05:00"
EARLIER = "2026-11-29 10:00:00"


def store_push(payload: dict[str, str], *, vendor: str = "veesing", kind: str = "sms") -> int:
    with session_scope() as session:
        push, _ = record_push(session, vendor=vendor, kind=kind, payload=payload, now=utcnow())
        assert push.id is not None
        return push.id


def job_of(phones: list[str], *, channel: Channel = Channel.SMS, vendor: str = "veesing") -> str:
    content = "【Herald】您好" if channel == Channel.SMS else "code"
    new = NewJob(channel=channel, vendor=vendor, content=content, phones=phones)
    with session_scope() as session:
        job, _ = create_job(session, new=new, now=utcnow())
        return job.id


def set_delivery(job_id: str, phone: str, **values: Any) -> None:
    with session_scope() as session:
        session.execute(
            sa.update(Delivery)
            .where(col(Delivery.job_id) == job_id, col(Delivery.phone) == phone)
            .values(**values)
        )


def receipt(phone: str, ref: str, delivered: bool, at: str = EARLIER) -> dict[str, str]:
    code = "DELIVRD" if delivered else "UNDELIV"
    return {"mobile": phone, "taskid": ref, "status": str(int(delivered)), "code": code} | {
        "receivetime": at
    }


def scenario(digit: str) -> tuple[str, list[dict[str, str]], list[tuple[str, str]]]:
    """Deliveries in every state a report meets, and the pushes about them, in order; the
    phones (`1380000<digit>0n`) and batch ids (`<digit>-...`) are the scenario's own."""
    phones = [f"1380000{digit}{n:02d}" for n in range(9)]
    ref = f"{digit}-R1"
    job_id = job_of(phones)
    submitted = {"status": DeliveryStatus.SUBMITTED, "vendor_ref": ref, "submitted_at": utcnow()}
    for phone in phones[:4] + phones[7:8]:
        set_delivery(job_id, phone, **submitted)
    set_delivery(  # reported delivered at LATER already
        job_id,
        phones[3],
        status=DeliveryStatus.DELIVERED,
        vendor_status="DELIVRD",
        reported_at=utcnow().replace(
            year=2026, month=11, day=29, hour=2, minute=5, second=0, microsecond=0
        ),
    )
    set_delivery(job_id, phones[4], status=DeliveryStatus.SENDING)  # its batch id never stored
    set_delivery(job_id, phones[8], status=DeliveryStatus.UNKNOWN, vendor_ref=ref)
    pushes = [
        receipt(phones[0], ref, True),  # waits: settled in bulk
        receipt(phones[1], ref, False),  # waits: settled in bulk, undelivered
        receipt(phones[2], ref, False, EARLIER),  # two reports of one delivery in one batch:
        receipt(phones[2], ref, True, LATER),  # the later final one wins
        receipt(phones[3], ref, False, EARLIER),  # older than the final one applied: repeated
        receipt(phones[4], f"{digit}-R9", True),  # matched by phone (no batch id stored)
        receipt(f"1390000{digit}000", f"{digit}-R404", True),  # no such batch yet: unmatched
        {"mobile": phones[5], "content": "TD", "receivetime": ""},  # an opt-out reply
        receipt(phones[7], ref, True),
        receipt(phones[7], ref, True, LATER),  # the same word again, later: repeated
        receipt(phones[8], ref, True),  # unknown (the send was ambiguous): settled in bulk
    ]
    return job_id, pushes, [(p, ref) for p in phones]


def outcome_of(job_id: str, push_ids: list[int], digit: str) -> dict[str, Any]:
    """Everything a report can change, with the scenario's own digit taken out."""

    def plain(value: Any) -> Any:
        return str(value).replace(f"1380000{digit}", "P").replace(f"{digit}-", "")

    with session_scope() as session:
        deliveries = session.exec(
            select(Delivery).where(col(Delivery.job_id) == job_id).order_by(col(Delivery.phone))
        ).all()
        ids = [d.id for d in deliveries]
        events = session.exec(
            select(DeliveryEvent)
            .where(col(DeliveryEvent.delivery_id).in_(ids))
            .order_by(col(DeliveryEvent.delivery_id), col(DeliveryEvent.id))
        ).all()
        pushes = {p.id: p for p in session.exec(select(VendorPush)) if p.id in push_ids}
        inbound = session.exec(select(InboundMessage.phone)).all()
        suppressed = session.exec(select(Suppression.phone)).all()
    by_id = {d.id: plain(d.phone) for d in deliveries}
    return {
        "deliveries": [
            (
                plain(d.phone),
                d.status,
                plain(d.vendor_ref),
                d.vendor_status,
                d.reported_at,
                d.report_detail,
            )
            for d in deliveries
        ],
        "events": [(by_id[e.delivery_id], e.from_status, e.to_status, e.detail) for e in events],
        "pushes": [(pushes[i].outcome, pushes[i].applied_at is not None) for i in push_ids],
        "inbound": sorted(plain(p) for p in inbound if p.startswith(f"1380000{digit}")),
        "suppressed": sorted(plain(p) for p in suppressed if p.startswith(f"1380000{digit}")),
    }


def test_a_batch_comes_to_what_applying_each_push_alone_in_order_comes_to() -> None:
    alone_job, alone_pushes, _ = scenario("1")
    alone_ids = [store_push(p) for p in alone_pushes]
    for push_id in alone_ids:
        tasks.pushes.apply_push(push_id)
    batch_job, batch_pushes, _ = scenario("2")
    batch_ids = [store_push(p) for p in batch_pushes]

    taken = tasks.pushes.apply_batch(ids=batch_ids, now=utcnow())

    assert taken == len(batch_ids)
    alone, batch = outcome_of(alone_job, alone_ids, "1"), outcome_of(batch_job, batch_ids, "2")
    for part in alone:
        assert batch[part] == alone[part], part
    statuses = {phone: status for phone, status, *_ in batch["deliveries"]}
    assert statuses == {
        "P00": DeliveryStatus.DELIVERED,
        "P01": DeliveryStatus.UNDELIVERED,
        "P02": DeliveryStatus.DELIVERED,
        "P03": DeliveryStatus.DELIVERED,
        "P04": DeliveryStatus.DELIVERED,
        "P05": DeliveryStatus.QUEUED,
        "P06": DeliveryStatus.QUEUED,
        "P07": DeliveryStatus.DELIVERED,
        "P08": DeliveryStatus.DELIVERED,
    }
    assert [outcome for outcome, _ in batch["pushes"]] == [
        "applied",
        "applied",
        "applied",
        "applied",
        "repeated",
        "applied",
        "unmatched",
        "inbound stored; number suppressed",
        "applied",
        "repeated",
        "applied",
    ]
    assert batch["pushes"][6] == ("unmatched", False)  # waits for the sweep
    assert ("P02", "undelivered", "delivered", "report DELIVRD (a later final report)") in batch[
        "events"
    ]


def test_a_voice_receipt_keeps_its_detail_in_bulk() -> None:
    phones = ["13800138000", "13900139000"]
    job_id = job_of(phones, channel=Channel.VOICE)
    for phone in phones:
        set_delivery(job_id, phone, status=DeliveryStatus.SUBMITTED, vendor_ref="V1")
    answered = receipt(phones[0], "V1", True) | {"talktime": "12", "remark": "接收成功"}
    ids = [
        store_push(answered, kind="voice"),
        store_push(receipt(phones[1], "V1", False), kind="voice"),
    ]

    tasks.pushes.apply_batch(ids=ids, now=utcnow())

    with session_scope() as session:
        rows = session.exec(
            select(Delivery).where(col(Delivery.job_id) == job_id).order_by(col(Delivery.phone))
        ).all()
    assert [(d.status, d.report_detail) for d in rows] == [
        (DeliveryStatus.DELIVERED, {"talk_time_s": 12, "remark": "接收成功"}),
        (DeliveryStatus.UNDELIVERED, {"talk_time_s": None, "remark": None}),
    ]
    assert rows[0].reported_at is not None and rows[0].reported_at.hour == 2  # 10:00 Shanghai


def test_a_fivec_page_is_applied_in_chunks_with_repeats_across_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tasks.pushes, "RECORDS_PER_CHUNK", 3)
    phones = [f"1350000{n:04d}" for n in range(7)]
    job_id = job_of(phones, channel=Channel.MMS, vendor="fivec")
    for phone in phones:
        set_delivery(job_id, phone, status=DeliveryStatus.SUBMITTED, vendor_ref="777")
    records = [f"777,{p},DELIVRD,2026-11-29 10:00:00" for p in phones]
    records.insert(2, f"777,{phones[4]},UNKNOWN,2026-11-29 09:00:00")  # settled, then again
    records.append(f"777,{phones[0]},DELIVRD,2026-11-29 10:00:00")  # a repeat, chunks later
    page = ";".join(records).encode()
    body = {"body_base64": base64.b64encode(page).decode(), "encoding": "utf-8"}
    push_id = store_push(body, vendor="fivec", kind="reports")

    tasks.push_drain.apply_pushes()

    with session_scope() as session:
        rows = session.exec(select(Delivery).where(col(Delivery.job_id) == job_id)).all()
        push = session.get(VendorPush, push_id)
        fourth = next(d.id for d in rows if d.phone == phones[4])
        history = session.exec(
            select(DeliveryEvent.from_status, DeliveryEvent.to_status)
            .where(DeliveryEvent.delivery_id == fourth)
            .order_by(col(DeliveryEvent.id))
        ).all()
    assert {d.status for d in rows} == {DeliveryStatus.DELIVERED}
    assert push is not None and push.outcome == "9 reports applied"
    assert [tuple(h) for h in history][-2:] == [("submitted", "unknown"), ("unknown", "delivered")]


def reply(n: int) -> dict[str, str]:
    return {"mobile": f"1380013{n:04d}", "content": f"reply {n}", "receivetime": ""}


def outcomes(ids: list[int]) -> list[str | None]:
    with session_scope() as session:
        by_id = {p.id: p.outcome for p in session.exec(select(VendorPush))}
    return [by_id[i] for i in ids]


def test_a_poison_push_in_a_batch_is_quarantined_alone_and_the_others_applied(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def parse_with_a_bug(payload: dict[str, str]) -> list[VendorNews]:
        raise KeyError(payload["missing"])

    broken = tasks.pushes.PushKind(parse=parse_with_a_bug, summary=tasks.pushes.one_record)
    monkeypatch.setitem(tasks.pushes.PUSH_KINDS, ("fivec", "reports"), broken)
    good = [store_push(reply(n)) for n in range(3)]
    poison = store_push({"fetched_at": "x"}, vendor="fivec", kind="reports")
    good += [store_push(reply(n)) for n in range(3, 6)]

    tasks.push_drain.apply_pushes()

    assert outcomes(good) == ["inbound stored"] * 6
    assert outcomes([poison]) == ["quarantined: KeyError"]
    with session_scope() as session:
        assert len(session.exec(select(InboundMessage)).all()) == 6


def test_an_unreachable_store_fails_the_batch_without_quarantining_anything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from worker.errors import StoreUnavailable

    ids = [store_push(reply(n)) for n in range(3)]

    def outage(*_args: object, **_kwargs: object) -> None:
        raise StoreUnavailable("the job store is unreachable (OperationalError)")

    monkeypatch.setattr(tasks.pushes, "apply_taken", outage)

    assert tasks.push_drain.apply_pushes() == "store unreachable"
    assert outcomes(ids) == [None, None, None]


def test_two_appliers_never_take_the_same_push(store_url: str) -> None:
    if not store_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer: see the race test below")
    ids = [store_push(reply(n)) for n in range(5)]
    holding = threading.Event()
    release = threading.Event()
    held: list[int] = []

    def first_applier() -> None:
        with session_scope() as session:
            held.extend(p.id for p in take_pushes(session, ids=None, limit=3) if p.id)
            holding.set()
            release.wait(10)
            session.rollback()  # it dies: the pushes it held are free again

    thread = threading.Thread(target=first_applier)
    thread.start()
    assert holding.wait(10)

    second_took = tasks.pushes.apply_batch(now=utcnow())

    release.set()
    thread.join()
    assert held == ids[:3]
    assert second_took == 2
    assert outcomes(ids) == [None, None, None, "inbound stored", "inbound stored"]
    assert tasks.pushes.apply_batch(now=utcnow()) == 3
    with session_scope() as session:
        assert len(session.exec(select(InboundMessage)).all()) == 5


def test_a_batch_whose_pushes_another_applier_marked_first_is_rolled_back(store_url: str) -> None:
    if not store_url.startswith("sqlite"):
        pytest.skip("PostgreSQL locks the batch's pushes: the other applier waits for it")
    push_id = store_push(reply(1))
    with session_scope() as session:
        assert len(take_pushes(session, ids=None, limit=10)) == 1
        tasks.pushes.apply_push(push_id)  # another applier, in its own transaction
        with pytest.raises(PushesRaced):
            mark_pushes(session, outcomes={push_id: "inbound stored"}, now=utcnow())
        session.rollback()

    assert outcomes([push_id]) == ["inbound stored"]


def test_the_sweep_flags_a_batch_of_pushes_unmatched_past_the_window() -> None:
    long_ago = utcnow() - timedelta(days=4)
    with session_scope() as session:
        for n in range(3):
            record_push(
                session,
                vendor="veesing",
                kind="sms",
                payload=receipt(f"1380000{n:04d}", "R404", True),
                now=long_ago,
            )
    with session_scope() as session:
        ids = [p.id for p in session.exec(select(VendorPush)) if p.id is not None]

    tasks.pushes.apply_batch(ids=ids, now=utcnow(), flag_before=utcnow() - timedelta(days=3))

    assert all((o or "").startswith("unmatched after 259200 s") for o in outcomes(ids))


class SentTasks:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> SentTasks:
    """The applier tasks the doorbell sends, counted instead of sent; the door open."""
    counter = SentTasks()
    monkeypatch.setattr(worker.push_doorbell, "send_applier", counter)
    monkeypatch.setattr(tasks.push_drain, "send_applier", counter)
    redis_client().delete(PUSH_DOORBELL_KEY)
    return counter


def test_the_doorbell_sends_one_applier_for_the_pushes_of_its_hold(sent: SentTasks) -> None:
    bell = worker.push_doorbell.Doorbell()

    rang = [bell.ring() for _ in range(20)]

    assert rang == [True] + [False] * 19
    assert sent.count == 1
    ttl = redis_client().pttl(PUSH_DOORBELL_KEY)
    assert 0 < ttl <= worker.push_doorbell.DOORBELL_HOLD_MS
    worker.push_doorbell.open_door()
    assert bell.ring() is True
    assert sent.count == 2


def test_pushes_through_the_api_are_stored_once_and_ring_once(sent: SentTasks) -> None:
    from worker.api import api

    url = f"/callbacks/veesing/sms/{CALLBACK_TOKEN}"
    with TestClient(api) as client:
        answers = [client.post(url, data=reply(n)).status_code for n in range(5)]
        again = client.post(url, data=reply(0)).status_code

    assert answers == [200] * 5 and again == 200
    with session_scope() as session:
        assert len(session.exec(select(VendorPush)).all()) == 5
    assert sent.count == 1
    tasks.push_drain.apply_pushes()
    assert outcomes(list(range(1, 6))) == ["inbound stored"] * 5
    assert redis_client().exists(PUSH_DOORBELL_KEY) == 0  # opened for the next push


def test_a_redis_outage_does_not_fail_a_push(
    sent: SentTasks, monkeypatch: pytest.MonkeyPatch
) -> None:
    from worker.api import api

    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    monkeypatch.setattr(worker.push_doorbell, "doorbell_redis", lambda: dead)
    monkeypatch.setattr(callbacks, "doorbell", worker.push_doorbell.Doorbell())
    url = f"/callbacks/veesing/sms/{CALLBACK_TOKEN}"
    with TestClient(api) as client:
        answers = [client.post(url, data=reply(n)).status_code for n in range(3)]

    assert answers == [200] * 3
    assert sent.count == 0
    with session_scope() as session:
        assert len(session.exec(select(VendorPush)).all()) == 3
    from tasks.maintenance import sweep

    assert sweep()["pushes"] == 3


def test_a_push_stored_just_before_the_door_opens_is_applied_by_that_run(
    sent: SentTasks, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = store_push(reply(1))
    late: list[int] = []
    real_open: Callable[[], None] = tasks.push_drain.open_door

    def open_door_after_a_late_push() -> None:
        if not late:  # committed while the door was still shut: its ring was swallowed
            late.append(store_push(reply(2)))
        real_open()

    monkeypatch.setattr(tasks.push_drain, "open_door", open_door_after_a_late_push)

    assert tasks.push_drain.apply_pushes() == "2 pushes taken"
    assert outcomes([first, *late]) == ["inbound stored", "inbound stored"]


def test_a_run_past_its_budget_sends_itself_again(
    sent: SentTasks, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tasks.pushes, "PUSHES_PER_BATCH", 2)
    monkeypatch.setattr(tasks.push_drain, "BUDGET_SHARE_OF_TASK_LIMIT", 0.0)
    ids = [store_push(reply(n)) for n in range(5)]

    result = tasks.push_drain.apply_pushes()

    assert result == "2 pushes taken; more left: sent again"
    assert sent.count == 1
    assert outcomes(ids) == ["inbound stored"] * 2 + [None] * 3
