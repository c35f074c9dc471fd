"""Unit tests of applying stored vendor pushes to the store."""

from __future__ import annotations

import pytest
from sqlmodel import select

from tasks.pushes import apply_stored_push
from worker.store import (
    InboundMessage,
    Suppression,
    VendorPush,
    record_push,
    session_scope,
    utcnow,
)

pytestmark = pytest.mark.usefixtures("store_url")


def apply(payload: dict[str, str]) -> tuple[str, VendorPush]:
    with session_scope() as session:
        push, _ = record_push(session, vendor="veesing", kind="sms", payload=payload, now=utcnow())
        outcome = apply_stored_push(session, push=push, now=utcnow())
    return outcome, push


@pytest.mark.parametrize("word", ["TD", "td", " 退订 ", "N"])
def test_an_opt_out_reply_is_kept_and_suppresses_the_number(word: str) -> None:
    outcome, push = apply(
        {"mobile": "13800138000", "taskid": "9", "content": word, "receivetime": ""}
    )

    assert outcome == "inbound stored; number suppressed"
    assert push.applied_at is not None
    with session_scope() as session:
        assert session.exec(select(InboundMessage.content)).one() == word
        assert session.get(Suppression, "13800138000") is not None


def test_a_reply_that_merely_contains_a_keyword_does_not_suppress() -> None:
    outcome, _ = apply({"mobile": "13800138000", "content": "Not now, thanks"})

    assert outcome == "inbound stored"
    with session_scope() as session:
        assert session.exec(select(Suppression)).all() == []


def test_a_receipt_for_no_known_batch_waits_unapplied() -> None:
    outcome, push = apply(
        {"mobile": "13800138000", "taskid": "404", "status": "1", "code": "DELIVRD"}
    )

    assert outcome == "unmatched"
    assert push.applied_at is None


def test_a_malformed_push_is_marked_applied_with_the_reason() -> None:
    outcome, push = apply({"taskid": "1", "status": "1"})

    assert outcome == "malformed: mobile is missing"
    assert push.applied_at is not None


def test_a_report_still_unmatched_after_the_window_is_flagged_and_kept(
    redis_url: str,
) -> None:
    from datetime import timedelta

    from tasks.maintenance import sweep

    long_ago = utcnow() - timedelta(days=4)
    with session_scope() as session:
        record_push(
            session,
            vendor="veesing",
            kind="sms",
            payload={"mobile": "13800138000", "taskid": "404", "status": "1"},
            now=long_ago,
        )

    sweep()

    with session_scope() as session:
        push = session.exec(select(VendorPush)).one()
    assert push.applied_at is not None
    assert (push.outcome or "").startswith("unmatched after 259200 s")


def test_a_push_the_vendor_sends_again_is_stored_and_applied_once() -> None:
    reply = {"mobile": "13800138000", "taskid": "9", "content": "好的", "receivetime": ""}

    first, again = apply(reply), apply(reply)

    assert first[1].id == again[1].id
    with session_scope() as session:
        assert len(session.exec(select(InboundMessage)).all()) == 1
