"""Integration: Veesing MMS, every documented reply and push, end to end.

Each test drives the real system (POST /v1/mms → Celery worker → sandbox `mmsApi/create` →
audit push → API → worker → `mmsApi/send` → receipt push → store) into one reply of the
document's status tables, or one of its two pushes, and asserts what the store then says about
the recipients (GET /v1/messages/{id}, and the store itself for what the API does not show: the
status history, `not_before`, the created contents and their audit).

How each reply is provoked: by the sandbox's own mechanism where it has one (a title containing
REJECT, the `undeliverable` list, a locked account, an IP block, balance 0, an unknown or
malformed mmsId), otherwise by its `reply_message` fault limited to the next request of one path
(`limit: 1`). Every test uses its own phone numbers and its own MMS title, so that no test shares
an audited content with another unless it means to; the autouse `scene` fixture cancels what a
test left waiting, closes the vendor's breaker, clears faults and puts the sandbox account back.

Reply or push → how it is provoked → where the recipient ends:

- create 成功 → audit push returnStatus 1 (审核通过) → send 成功 → receipt status 1 → delivered
- receipt status 0 → the `undeliverable` list → undelivered
- audit push returnStatus 0 (内容不合规) → a title containing REJECT → failed, last_error
  "MMS rejected by the vendor's audit: 内容不合规"; a later job of that content fails at once
- a second job of the same content → no second create, same mmsId (content_ref), delivered
- create 缺少参数 / 参数错误 (the failure sample) → fault → failed, "MMS refused at creation: ..."
- create 账号或密码错误 (fault) / 您的账户已被锁定,请联系您的专属客服 (state) → deferred,
  "MMS creation failed: ... (attempt 1)", nothing created or sent (and see the xfail below)
- create 未知原因,请联系客服 → fault, once → deferred, created on retry, delivered
- send 缺少参数, 参数错误, 模板不存在或者未通过, 模板id格式不正确, 手机号码格式不正确 →
  fault → failed, last_error the vendor's words
- send 账号或密码错误 (fault), 您的账户已被锁定... / IP受限 / 余额不足 (state, after the content
  was approved) → deferred for the 300 s cooldown, the Veesing MMS breaker open;
  余额不足 with failover allowed → sent through 5C and delivered there
- send 未知原因,请联系客服 → fault, once → deferred, retried, delivered, sent once
- the sandbox's own mmsId refusals (unknown, not digits, rejected) → adapter `send` → the class
- balance at `/mmsApi/getBalance` and `/mmsApi/group/getBalance` → remainPoint / error class
- refused at enqueue (16 frames, 81 KB, an emoji, a .png) → 422 naming field and rule, nothing
  stored, nothing sent
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from tests.integration.conftest import System
from tests.integration.scene import (
    COOLDOWN_S,
    LOCKED,
    RESTING,
    VEESING_BALANCE_ERRORS,
    VeesingScene,
    assert_waiting_for_the_vendor,
    shanghai_time,
)
from worker.errors import MessageRejected, NotSent
from worker.store import Job, MmsContent
from worker.vendors.veesing import Balance, VeesingCredentials
from worker.vendors.veesing_mms import VeesingMms

pytestmark = pytest.mark.integration

CREATE_PATH = "/mmsApi/create"
SEND_PATH = "/mmsApi/send"
TABLE_BALANCE_PATH = "/mmsApi/getBalance"
SAMPLE_BALANCE_PATH = "/mmsApi/group/getBalance"
GIF = base64.b64encode(b"GIF89a" + b"\x01" * 200).decode()
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64).decode()
# A new content's recipients wait for its audit, are released by the approval, then sent.
CREATED_AUDITED_SENT = [
    "awaiting_audit",
    "queued",
    "claimed",
    "sending",
]


def frames(text: str = "欢迎光临") -> list[dict[str, Any]]:
    return [{"seconds": 5, "text": text, "media": {"type": "gif", "base64": GIF}}]


class Scene(VeesingScene):
    """One test's view of the system, for Veesing MMS."""

    account_name = "veesing_mms"
    send_path = SEND_PATH
    breaker_keys = ("herald:breaker:veesing:mms", "herald:breaker:fivec:mms")
    restored_state = ("undeliverable",)

    # --- acting ---

    def mms(self, phones: list[str], title: str, **extra: Any) -> str:
        body = {"to": phones, "title": title, "frames": frames(), **extra}
        return self.track(self.system.submit("/v1/mms", body))

    def approved_content(self, phone: str, title: str) -> str:
        """Have the vendor create and approve `title`'s content (one job, delivered to
        `phone`); return its mmsId."""
        job_id = self.mms([phone], title)
        assert self.settled(job_id)["status"] == "delivered"
        ref = self.system.job(job_id)["content_ref"]
        assert ref is not None
        return str(ref)

    def adapter(
        self,
        credentials: VeesingCredentials | None = None,
        balance_path: str = TABLE_BALANCE_PATH,
    ) -> VeesingMms:
        """Our adapter, called directly from the test (not through herald's worker)."""
        return VeesingMms(
            self.client,
            self.system.sandbox_url,
            credentials or self.credentials(),
            balance_path=balance_path,
        )

    # --- observing ---

    def content(self, ref: str) -> MmsContent | None:
        with Session(self.engine) as session:
            return session.exec(select(MmsContent).where(col(MmsContent.ref) == ref)).first()

    def contents_since_start(self) -> list[MmsContent]:
        with Session(self.engine) as session:
            rows = session.exec(select(MmsContent).order_by(col(MmsContent.id)))
            return [c for c in rows if c.created_at.timestamp() >= self.started - 1]

    def job_count(self) -> int:
        with Session(self.engine) as session:
            return int(session.exec(select(func.count()).select_from(Job)).one())


@pytest.fixture(autouse=True)
def scene(system: System, engine: Engine) -> Iterator[Scene]:
    yield from Scene.staged(system, engine)


# --- create 成功, the audit push, send 成功 and the receipt push --------------------------------


def test_a_created_mms_is_approved_by_the_audit_push_sent_and_delivered_by_a_status_1_receipt(
    scene: Scene,
) -> None:
    # Given a number the sandbox delivers to; When an MMS is posted
    job_id = scene.mms(["13702020001"], "审核通过的彩信 A")

    # Then the vendor created it once, answering its mmsId, which the job keeps
    recipient = scene.settled(job_id)
    job = scene.system.job(job_id)
    (create,) = scene.requests(CREATE_PATH)
    assert (create["outcome"], create["detail"]) == ("ok", job["content_ref"])

    # And the audit push approved that mmsId, which the store records
    audit = scene.pushed("veesing_mms_audit", "taskId", job["content_ref"])
    assert (audit["returnStatus"], audit["message"]) == ("1", "审核通过")
    content = scene.content(job["content_ref"])
    assert content is not None
    assert (content.status, content.reason) == ("approved", "审核通过")

    # And the send named that mmsId, and the status-1 receipt of its batch delivered it
    (sent,) = scene.sends_to("13702020001")
    receipt = scene.pushed("veesing_mms_receipt", "mobile", "13702020001")
    assert (sent["mms_id"], sent["title"], sent["content"]) == (
        job["content_ref"],
        "审核通过的彩信 A",
        "欢迎光临",
    )
    assert receipt["status"] == "1"
    assert recipient["status"] == "delivered"
    assert recipient["vendor_ref"] == sent["ref"] == receipt["taskid"]
    assert recipient["vendor_status"] is None  # the MMS receipt carries no code
    assert recipient["last_error"] is None
    assert datetime.fromisoformat(recipient["reported_at"]) == shanghai_time(receipt["receivetime"])
    # (a receipt may overtake the worker's own `submitted`: the history ends either way)
    history = scene.history(job_id)
    assert history[:4] == CREATED_AUDITED_SENT
    assert history[4:] in (["submitted", "delivered"], ["delivered"])


def test_a_receipt_with_status_0_makes_the_recipient_undelivered(scene: Scene) -> None:
    # Given a number the sandbox's carrier will not deliver to
    scene.account(undeliverable=["13702020011"])

    # When an MMS is posted to it
    job_id = scene.mms(["13702020011"], "送不到的彩信")

    # Then it was sent once, and its status-0 receipt makes it undelivered
    recipient = scene.settled(job_id)
    receipt = scene.pushed("veesing_mms_receipt", "mobile", "13702020011")
    assert receipt["status"] == "0"
    assert recipient["status"] == "undelivered"
    assert recipient["vendor_ref"] == receipt["taskid"]
    assert recipient["vendor_status"] is None
    assert len(scene.sends_to("13702020011")) == 1


# --- the audit push: rejected ------------------------------------------------------------------


def test_an_audit_rejection_fails_the_recipients_with_the_vendors_reason_and_sends_nothing(
    scene: Scene,
) -> None:
    # When an MMS whose title the vendor's audit refuses is posted to two numbers
    job_id = scene.mms(["13702020021", "13702020022"], "REJECT 违规彩信")

    # Then the audit push rejected its mmsId with 内容不合规
    (job,) = scene.system.wait_settled([job_id], timeout_s=15)
    audit = scene.pushed("veesing_mms_audit", "taskId", job["content_ref"])
    assert (audit["returnStatus"], audit["message"]) == ("0", "内容不合规")
    content = scene.content(job["content_ref"])
    assert content is not None
    assert (content.status, content.reason) == ("rejected", "内容不合规")

    # And both recipients failed with the vendor's reason, having never been sent
    reason = "MMS rejected by the vendor's audit: 内容不合规"
    assert [(r["phone"], r["status"], r["last_error"]) for r in job["recipients"]] == [
        ("13702020021", "failed", reason),
        ("13702020022", "failed", reason),
    ]
    assert scene.requests(SEND_PATH) == []

    # And a later job of the same content fails at once, without asking the vendor again
    again = scene.mms(["13702020023"], "REJECT 违规彩信")
    recipient = scene.settled(again)
    assert (recipient["status"], recipient["last_error"]) == ("failed", reason)
    assert scene.system.job(again)["content_ref"] == job["content_ref"]
    assert len(scene.requests(CREATE_PATH)) == 1
    assert scene.requests(SEND_PATH) == []

    # And the vendor itself refuses to send the rejected mmsId
    with pytest.raises(MessageRejected) as raised:
        scene.adapter().send(job["content_ref"], ["13702020024"])
    assert raised.value.reply == "模板不存在或者未通过"


# --- one created content serves later jobs ----------------------------------------------------


def test_a_second_job_of_the_same_content_reuses_the_first_mms_id_without_a_second_create(
    scene: Scene,
) -> None:
    # Given a first job of a content was created, approved and delivered
    mms_id = scene.approved_content("13702020031", "同一内容的彩信")

    # When a second job of exactly the same content is posted to another number
    second = scene.mms(["13702020032"], "同一内容的彩信")

    # Then it is delivered through the same mmsId, and the vendor created the content once
    recipient = scene.settled(second)
    assert recipient["status"] == "delivered"
    assert scene.system.job(second)["content_ref"] == mms_id
    (create,) = scene.requests(CREATE_PATH)
    assert create["detail"] == mms_id
    sends = scene.requests(SEND_PATH)
    assert [(s["outcome"], s["accepted"]) for s in sends] == [("ok", True), ("ok", True)]
    assert [s["mms_id"] for s in scene.sends_to("13702020032")] == [mms_id]
    # And the second job never waited for an audit: the first one's served it
    history = scene.history(second)
    assert history[:2] == ["claimed", "sending"]
    assert history[2:] in (["submitted", "delivered"], ["delivered"])


# --- create: each documented error ------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "phone"),
    [("缺少参数", "13702020041"), ("参数错误", "13702020042")],
)
def test_a_create_refused_for_its_content_fails_the_recipient_with_the_vendors_words(
    scene: Scene, reply: str, phone: str
) -> None:
    # Given the vendor refuses the next create with a permanent reply (缺少参数 of the status
    # table, or 参数错误 of the document's failure sample)
    scene.fault(reply, path=CREATE_PATH)

    # When an MMS is posted
    job_id = scene.mms([phone], f"创建被拒的彩信 {reply}")

    # Then the recipient failed, saying what the vendor said; nothing was created or sent
    recipient = scene.recipient(job_id, until=RESTING)
    assert recipient["status"] == "failed"
    assert recipient["last_error"] == f"MMS refused at creation: veesing: {reply}"
    assert scene.system.job(job_id)["content_ref"] is None
    assert scene.history(job_id) == ["failed"]
    assert scene.contents_since_start() == []
    assert scene.requests(SEND_PATH) == []


@pytest.mark.parametrize(
    ("provoke", "reply", "phone"),
    [
        ("fault", "账号或密码错误", "13702020051"),
        ("locked", LOCKED, "13702020052"),
    ],
)
def test_a_create_refused_for_the_account_defers_the_recipient_with_the_vendors_words(
    scene: Scene, provoke: str, reply: str, phone: str
) -> None:
    # Given the vendor refuses every create for the account (wrong credentials, locked)
    if provoke == "fault":
        scene.fault(reply, path=CREATE_PATH, times=None)
    else:
        scene.account(status="locked")

    # When an MMS that may not fail over is posted
    job_id = scene.mms([phone], f"账户被拒的彩信 {provoke}", allow_failover=False)

    # Then the recipient is deferred with the vendor's words, and nothing was created or sent
    deferral = scene.first_deferral(job_id)
    assert deferral.detail == f"MMS creation failed: veesing: {reply} (attempt 1)"
    assert scene.history(job_id)[0] == "deferred"
    assert scene.contents_since_start() == []
    assert scene.requests(SEND_PATH) == []


def test_a_create_refused_for_the_account_opens_the_breaker_and_waits_the_cooldown(
    scene: Scene,
) -> None:
    # Given the vendor refuses every request of the locked account
    scene.account(status="locked")

    # When an MMS that may not fail over is posted
    job_id = scene.mms(["13702020053"], "账户被锁时创建的彩信", allow_failover=False)

    # Then, as for any refusal of the account (docs/design.md, promise 4), the fleet stops calling
    # Veesing MMS and the recipient waits out the cooldown
    scene.first_deferral(job_id)
    reason, _ = scene.breaker()
    assert reason == LOCKED
    assert scene.deferred_for(job_id) >= timedelta(seconds=COOLDOWN_S - 1)
    time.sleep(3)
    assert len(scene.requests(CREATE_PATH)) == 1


def test_a_create_answered_unknown_reason_is_retried_then_created_approved_and_delivered(
    scene: Scene,
) -> None:
    # Given the vendor answers the next create 未知原因,请联系客服 (and then recovers)
    scene.fault("未知原因,请联系客服", path=CREATE_PATH)

    # When an MMS is posted
    job_id = scene.mms(["13702020061"], "创建重试的彩信")

    # Then the create was retried after a backoff, and the MMS delivered
    recipient = scene.settled(job_id)
    assert recipient["status"] == "delivered"
    assert recipient["last_error"] is None
    _, _, events = scene.stored(job_id)
    assert [(e.to_status, e.detail) for e in events if e.to_status == "deferred"] == [
        ("deferred", "MMS creation failed: veesing: 未知原因,请联系客服 (attempt 1)")
    ]
    assert [e.to_status for e in events][:2] == ["deferred", "queued"]
    assert [e.to_status for e in events][2:6] == CREATED_AUDITED_SENT
    creates = scene.requests(CREATE_PATH)
    assert [c["outcome"] for c in creates] == ["fault:reply", "ok"]
    assert scene.system.job(job_id)["content_ref"] == creates[1]["detail"]
    assert len(scene.sends_to("13702020061")) == 1


# --- send: each documented error (the content was created and approved first) -----------------


@pytest.mark.parametrize(
    ("reply", "phone"),
    [
        ("缺少参数", "13702020071"),
        ("参数错误", "13702020072"),
        ("模板不存在或者未通过", "13702020073"),
        ("模板id格式不正确", "13702020074"),
        ("手机号码格式不正确", "13702020075"),
    ],
)
def test_a_send_refused_for_the_message_or_number_fails_the_recipient_with_the_vendors_words(
    scene: Scene, reply: str, phone: str
) -> None:
    # Given the vendor will refuse the next send (the mmsId refusals are the ones the sandbox
    # gives for an unknown, unapproved or malformed mmsId)
    scene.fault(reply, path=SEND_PATH)

    # When an MMS is posted
    job_id = scene.mms([phone], f"发送被拒的彩信 {reply}")

    # Then it was created and approved, and its send failed with the vendor's words
    recipient = scene.recipient(job_id, until=RESTING)
    assert recipient["status"] == "failed"
    assert recipient["last_error"] == f"veesing: {reply}"
    assert recipient["vendor_ref"] is None
    assert scene.history(job_id) == [*CREATED_AUDITED_SENT, "failed"]
    assert [s["outcome"] for s in scene.requests(SEND_PATH)] == ["fault:reply"]
    assert scene.sends_to(phone) == []


@pytest.mark.parametrize(
    ("provoke", "reply", "first", "phone"),
    [
        ("fault", "账号或密码错误", "13702020081", "13702020085"),
        ("locked", LOCKED, "13702020082", "13702020086"),
        ("ip blocked", "IP受限", "13702020083", "13702020087"),
        ("no balance", "余额不足", "13702020084", "13702020088"),
    ],
)
def test_a_send_refused_for_the_account_defers_the_recipient_and_opens_the_breaker(
    scene: Scene, provoke: str, reply: str, first: str, phone: str
) -> None:
    # Given a content the vendor approved (a first job to `first` was delivered), and then an
    # account the vendor refuses to send for
    title = f"账户拒发的彩信 {provoke}"
    mms_id = scene.approved_content(first, title)
    scene.refuse_account(provoke, reply)

    # When an MMS of that content that may not fail over is posted
    job_id = scene.mms([phone], title, allow_failover=False)

    # Then it waits out the vendor-blocked cooldown, and the fleet stops calling Veesing MMS
    assert_waiting_for_the_vendor(scene, job_id, reply)
    assert scene.system.job(job_id)["content_ref"] == mms_id
    assert scene.history(job_id) == ["claimed", "sending", "deferred"]
    assert scene.sends_to(phone) == []


def test_no_balance_fails_the_mms_over_to_fivec_where_it_is_delivered(scene: Scene) -> None:
    # Given a content the vendor approved, and then an account with no balance left
    mms_id = scene.approved_content("13702020091", "余额不足转5C的彩信")
    scene.account(balance=0)

    # When an MMS of that content is posted with the default routing (failover allowed)
    job_id = scene.mms(["13702020092"], "余额不足转5C的彩信")

    # Then Veesing refused it, it went through 5C instead, and was delivered there
    recipient = scene.settled(job_id)
    vendor, _, events = scene.stored(job_id)
    assert recipient["status"] == "delivered"
    assert recipient["vendor_status"] == "DELIVRD"
    assert vendor == "fivec"
    assert "failed over to fivec: veesing: 余额不足" in [e.detail for e in events]
    assert [s["vendor"] for s in scene.sends_to("13702020092")] == ["fivec"]
    assert [s["mms_id"] for s in scene.sends_to("13702020091")] == [mms_id]
    assert scene.breaker()[0] == "余额不足"


def test_a_send_answered_unknown_reason_is_retried_after_a_backoff_and_delivered_once(
    scene: Scene,
) -> None:
    # Given the vendor answers the next send 未知原因,请联系客服 (and then recovers)
    scene.fault("未知原因,请联系客服", path=SEND_PATH)

    # When an MMS is posted
    job_id = scene.mms(["13702020101"], "发送重试的彩信")

    # Then it was deferred once with the vendor's words, retried, and delivered
    recipient = scene.settled(job_id)
    assert recipient["status"] == "delivered"
    assert recipient["last_error"] is None
    _, _, events = scene.stored(job_id)
    assert [(e.to_status, e.detail) for e in events if e.to_status == "deferred"] == [
        ("deferred", "veesing: 未知原因,请联系客服 (attempt 1)")
    ]
    history = [e.to_status for e in events]
    assert history[:8] == [*CREATED_AUDITED_SENT, "deferred", "queued", "claimed", "sending"]
    assert history[8:] in (["submitted", "delivered"], ["delivered"])
    # And the vendor sent it exactly once
    assert [s["outcome"] for s in scene.requests(SEND_PATH)] == ["fault:reply", "ok"]
    (sent,) = scene.sends_to("13702020101")
    assert sent["ref"] == recipient["vendor_ref"]


@pytest.mark.parametrize(
    ("mms_id", "reply"),
    [("987654321", "模板不存在或者未通过"), ("mms-55", "模板id格式不正确")],
)
def test_the_sandboxs_own_mms_id_refusals_raise_message_rejected_from_the_adapter(
    scene: Scene, mms_id: str, reply: str
) -> None:
    # When the adapter sends an mmsId the vendor never created, or one that is not digits
    with pytest.raises(NotSent) as raised:
        scene.adapter().send(mms_id, ["13702020111"])

    # Then the vendor refuses it with the words of its tables, read as a message refusal
    assert type(raised.value) is MessageRejected
    assert (raised.value.vendor, raised.value.reply) == ("veesing", reply)
    assert scene.sends_to("13702020111") == []


# --- balance (getBalance), through the adapter, at both documented addresses ------------------


@pytest.mark.parametrize("path", [TABLE_BALANCE_PATH, SAMPLE_BALANCE_PATH])
def test_the_balance_is_the_accounts_remain_point_at_either_address(
    scene: Scene, path: str
) -> None:
    # Given the sandbox MMS account holds a known balance
    scene.account(balance=4321)

    # When the adapter asks for the balance at the table's or the sample's address
    balance = scene.adapter(balance_path=path).balance()

    # Then it is that number, asked at that address
    assert balance == Balance(remain_point=4321)
    assert [(r["path"], r["outcome"]) for r in scene.requests(path)] == [(path, "ok")]


@pytest.mark.parametrize("path", [TABLE_BALANCE_PATH, SAMPLE_BALANCE_PATH])
@pytest.mark.parametrize(("provoke", "error", "reply"), VEESING_BALANCE_ERRORS)
def test_each_documented_balance_error_raises_its_class_at_either_address(
    scene: Scene, path: str, provoke: str, error: type[NotSent], reply: str
) -> None:
    # Given the sandbox will refuse the balance query for one documented reason
    credentials = scene.refuse_balance(provoke, reply, path=path)

    # When the adapter asks for the balance
    with pytest.raises(NotSent) as raised:
        scene.adapter(credentials, balance_path=path).balance()

    # Then it raises exactly the class the reply maps to, with the vendor's words
    assert type(raised.value) is error
    assert (raised.value.vendor, raised.value.reply) == ("veesing", reply)
    assert [r["path"] for r in scene.requests(path)] == [path]


# --- refused at enqueue: 422 naming the field and the rule, nothing stored or sent -------------


def sixteen_frames() -> list[dict[str, Any]]:
    return [{"seconds": 2, "text": f"第{n}帧"} for n in range(16)]


def eighty_one_kb() -> list[dict[str, Any]]:
    media = base64.b64encode(b"GIF89a" + b"\x00" * (81 * 1024 - 6)).decode()
    return [{"seconds": 5, "media": {"type": "gif", "base64": media}}]


def an_emoji_in_the_third_frame() -> list[dict[str, Any]]:
    return [*frames("第一帧"), *frames("第二帧"), {"seconds": 3, "text": "生日快乐🎂"}]


def a_png_in_the_fourth_frame() -> list[dict[str, Any]]:
    return [
        *frames("一"),
        *frames("二"),
        *frames("三"),
        {"seconds": 3, "media": {"type": "png", "base64": PNG}},
    ]


@pytest.mark.parametrize(
    ("phone", "make_frames", "location", "rule"),
    [
        ("13702020121", sixteen_frames, ["body", "frames"], "at most 15 frames"),
        (
            "13702020122",
            eighty_one_kb,
            ["body", "frames"],
            "at most 81920 bytes (80 KB) in all, is 82944",
        ),
        (
            "13702020123",
            an_emoji_in_the_third_frame,
            ["body", "frames", 2, "text"],
            "emoji are not allowed: '🎂' at position 4",
        ),
        (
            "13702020124",
            a_png_in_the_fourth_frame,
            ["body", "frames", 3, "media", "type"],
            "one of gif, jpg, mp3, mp4",
        ),
    ],
)
def test_an_mms_breaking_a_rule_of_the_document_is_refused_at_enqueue_and_nothing_moves(
    scene: Scene,
    phone: str,
    make_frames: Any,
    location: list[str],
    rule: str,
) -> None:
    # Given the store's jobs before
    jobs_before = scene.job_count()

    # When an MMS breaking one of the document's content rules is posted for Veesing
    response = httpx.post(
        f"{scene.system.api_url}/v1/mms",
        json={"to": [phone], "title": "违规彩信", "frames": make_frames()},
        timeout=10,
    )

    # Then it is refused with 422 naming exactly that field and rule
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == [{"loc": location, "msg": rule, "type": "value_error"}]

    # And nothing was stored, and the vendor heard nothing
    assert scene.job_count() == jobs_before
    time.sleep(0.5)
    assert scene.requests(CREATE_PATH) == []
    assert scene.sends_to(phone) == []


def test_a_frame_rules_location_is_a_path_into_the_request_like_every_other_422(
    scene: Scene,
) -> None:
    # When an MMS with a .png in its fourth frame is posted
    response = httpx.post(
        f"{scene.system.api_url}/v1/mms",
        json={"to": ["13702020131"], "title": "违规彩信", "frames": a_png_in_the_fourth_frame()},
        timeout=10,
    )

    # Then the error's loc leads into the request body as FastAPI's own errors do
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["body", "frames", 3, "media", "type"]


def test_a_malformed_media_is_refused_by_fastapi_with_a_list_index_in_its_location(
    scene: Scene,
) -> None:
    # When an MMS whose fourth frame's media is not base64 is posted
    broken = [*frames("一"), *frames("二"), *frames("三")]
    broken.append({"seconds": 3, "media": {"type": "gif", "base64": "not base64!"}})
    response = httpx.post(
        f"{scene.system.api_url}/v1/mms",
        json={"to": ["13702020132"], "title": "违规彩信", "frames": broken},
        timeout=10,
    )

    # Then the 422 names the field with the list index as its own item
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["body", "frames", 3, "media", "base64"]
    assert "is not valid base64" in problem["msg"]
