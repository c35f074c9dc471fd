"""Integration: Meilian 5C MMS, every documented reply and the report pull.

Each test drives the real system (POST /v1/mms with `"vendor": "fivec"`, or POST
/v1/mms/personalised → Celery worker → sandbox `caixin_send.php` / `caixin_send_batch.php` →
store; beat's `herald.poll_fivec_reports` → `api/recv/index.php` → raw pull stored → applied)
into one reply of the document's tables, and asserts what the store then says about the
recipients (GET /v1/messages/{id}, and the store itself for the status history, `not_before` and
the raw report pulls).

In this module the sandbox's own reports are held back an hour (`SANDBOX_PUSH_DELAY_S`), so a
sent recipient rests in `submitted` and every report beat pulls is one a test queued itself
(`POST /_sandbox/fivec/reports`, with its layout, state, time and the page's encoding): the
resulting states are exact, never a draw of the sandbox's dice.

How each reply is provoked: by the sandbox's own mechanism where it has one (a blocked account,
an IP block, balance 0, wrong or missing credentials through the adapter), otherwise by its
`reply_message` fault limited to the next request of one path (`limit: 1`). Every test uses its
own phone numbers; the autouse `scene` fixture cancels what a test left waiting, closes the
breakers, clears faults, and puts the sandbox account and report encoding back.

Reply → how it is provoked → where the recipients end:

- success:msgid → a plain send → submitted, vendor_ref = msgid; a pulled DELIVRD → delivered
- Error:Missing message title, error:Unrecognized encoding, Error:MMS body too long. → fault →
  failed, last_error the vendor's line; error:Missing recipient → fault → failed
- error:Missing apikey, error:Missing password, error:APIKEY or password error → fault →
  deferred for the 300 s cooldown, the 5C breaker open (and through the adapter with the
  credentials that provoke them: VendorBlocked)
- error:Account is blocked / error:Unauthorized IP address / error:Account balance is
  insufficient → state → deferred 300 s, breaker open; no balance with failover allowed →
  sent through Veesing instead
- error:<msgid> (发送失败) → fault → retried on the small budget: once → submitted, twice → failed
- personalised batch → submitted with one msgid, each number sent its own text; its errors too
- report pull: 4-, 5- and 6-field records, a blank extension, a GBK page → each recipient its
  word's status, each record applied once, stored raw, and `no record` after
- balance: a bare number → Decimal; error:APIKEY or password error, error:Unauthorized IP
  address → VendorBlocked
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from tests.integration.conftest import System
from tests.integration.scene import (
    COOLDOWN_S,
    RESTING_OR_SUBMITTED,
    SHANGHAI,
    deferred_for,
    shanghai_time,
)
from tests.integration.scene import Scene as BaseScene
from worker.errors import NotSent, VendorBlocked
from worker.mms import Frame, Media, Mms
from worker.store import VendorPush
from worker.vendors.fivec import Fivec, FivecCredentials, parse_report_records

pytestmark = pytest.mark.integration

SYSTEM_ENV = {"SANDBOX_PUSH_DELAY_S": "3600"}
"""The sandbox's own reports (and Veesing receipts) come an hour after a send: never here."""

SEND_PATH = "/api/send/caixin_send.php"
BATCH_PATH = "/api/send/caixin_send_batch.php"
RESTING = RESTING_OR_SUBMITTED  # a sent recipient rests in submitted until a pulled report
GIF_BYTES = b"GIF89a" + b"\x02" * 120
GIF = base64.b64encode(GIF_BYTES).decode()
NO_RECORD = b"no record"


class Scene(BaseScene):
    """One test's view of the system, for 5C MMS."""

    account_name = "fivec"
    send_path = SEND_PATH
    breaker_keys = ("herald:breaker:fivec:mms", "herald:breaker:veesing:mms")

    def restore(self, before: dict[str, Any]) -> None:
        """Put the sandbox account back, and 5C's report page: empty, in UTF-8."""
        super().restore(before)
        self.report([], encoding="utf-8")

    # --- acting ---

    def mms(self, phones: list[str], title: str = "五西彩信", **extra: Any) -> str:
        body = {
            "to": phones,
            "title": title,
            "vendor": "fivec",
            "frames": [{"seconds": 5, "text": "你好", "media": {"type": "gif", "base64": GIF}}],
            **extra,
        }
        return self.track(self.system.submit("/v1/mms", body))

    def personalised(self, texts: dict[str, str], title: str = "个性彩信") -> str:
        body = {
            "title": title,
            "picture": {"type": "gif", "base64": GIF},
            "recipients": [{"to": phone, "text": text} for phone, text in texts.items()],
        }
        return self.track(self.system.submit("/v1/mms/personalised", body))

    def report(self, records: list[dict[str, Any]], *, encoding: str = "utf-8") -> None:
        """Queue report records at 5C, due now; its `recv` page is encoded in `encoding`."""
        self.system.sandbox(
            "POST", "/_sandbox/fivec/reports", json={"reports": records, "encoding": encoding}
        )

    def credentials(self, **changes: str) -> FivecCredentials:
        env = self.system.env
        values = {
            "username": env["HERALD_FIVEC_USERNAME"],
            "password": env["HERALD_FIVEC_PASSWORD"],
            "apikey": env["HERALD_FIVEC_APIKEY"],
            **changes,
        }
        return FivecCredentials(**values)

    def adapter(self, credentials: FivecCredentials | None = None) -> Fivec:
        """Our adapter, called directly from the test (not through herald's worker)."""
        return Fivec(self.client, self.system.sandbox_url, credentials or self.credentials())

    # --- observing ---

    def pulls(self) -> list[bytes]:
        """The raw bodies of this test's report pulls that held records, as stored."""
        with Session(self.engine) as session:
            pushes = session.exec(
                select(VendorPush)
                .where(col(VendorPush.vendor) == "fivec", col(VendorPush.kind) == "reports")
                .order_by(col(VendorPush.id))
            )
            bodies = [
                base64.b64decode(p.payload["body_base64"])
                for p in pushes
                if p.received_at.timestamp() >= self.started - 1
            ]
        return [b for b in bodies if b.strip() != NO_RECORD]


@pytest.fixture(autouse=True)
def scene(system: System, engine: Engine) -> Iterator[Scene]:
    yield from Scene.staged(system, engine)


def msgid_of(scene: Scene, path: str = SEND_PATH) -> str:
    """The msgid of this test's one accepted send (the sandbox logs its `success:` line)."""
    (accepted,) = [r for r in scene.requests(path) if r["accepted"]]
    prefix, _, msgid = accepted["detail"].partition(":")
    assert prefix == "success"
    return msgid


# --- success:msgid, and the pulled report that settles it ------------------------------------


def test_a_sent_mms_is_submitted_with_its_msgid_and_a_pulled_delivrd_report_delivers_it(
    scene: Scene,
) -> None:
    # When an MMS is posted for 5C
    job_id = scene.mms(["13703030001"], title="五西 成功")

    # Then 5C answered success:msgid, and the recipient waits in submitted with that msgid
    recipient = scene.recipient(job_id, until=RESTING)
    msgid = msgid_of(scene)
    (sent,) = scene.sends_to("13703030001")
    assert (recipient["status"], recipient["vendor_ref"]) == ("submitted", msgid)
    assert (sent["ref"], sent["content"]) == (msgid, "你好")
    assert recipient["last_error"] is None

    # When 5C has a DELIVRD record for it, which beat pulls
    scene.report(
        [{"msgid": msgid, "mobile": "13703030001", "time": "2026-03-01 10:00:00", "layout": "4"}]
    )

    # Then the recipient is delivered at the record's time, the word kept
    recipient = scene.recipient(job_id, until=RESTING - {"submitted"})
    assert recipient["status"] == "delivered"
    assert recipient["vendor_status"] == "DELIVRD"
    assert datetime.fromisoformat(recipient["reported_at"]) == shanghai_time("2026-03-01 10:00:00")
    assert scene.history(job_id) == ["claimed", "sending", "submitted", "delivered"]


def test_the_title_5c_receives_is_the_title_posted(scene: Scene) -> None:
    # When an MMS titled with Chinese characters and a space is posted for 5C
    job_id = scene.mms(["13703030002"], title="五西 标题")
    scene.recipient(job_id, until=RESTING)

    # Then 5C took that title, as the handset is to show it
    (sent,) = scene.sends_to("13703030002")
    assert sent["title"] == "五西 标题"


# --- each documented error of caixin_send.php -------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "phone"),
    [
        ("Error:Missing message title", "13703030011"),
        ("error:Missing recipient", "13703030012"),
        ("error:Unrecognized encoding", "13703030013"),
        ("Error:MMS body too long.", "13703030014"),
    ],
)
def test_a_refusal_of_the_message_or_its_numbers_fails_the_recipient_with_the_vendors_line(
    scene: Scene, reply: str, phone: str
) -> None:
    # Given 5C refuses the next send with one of the document's permanent replies
    scene.fault(reply)

    # When an MMS is posted for 5C
    job_id = scene.mms([phone])

    # Then the recipient failed with the vendor's line verbatim, never sent nor retried
    recipient = scene.recipient(job_id, until=RESTING)
    assert recipient["status"] == "failed"
    assert recipient["last_error"] == f"fivec: {reply}"
    assert recipient["vendor_ref"] is None
    assert scene.history(job_id) == ["claimed", "sending", "failed"]
    assert [r["outcome"] for r in scene.requests(SEND_PATH)] == ["fault:reply"]
    assert scene.sends_to(phone) == []


@pytest.mark.parametrize(
    ("provoke", "reply", "phone"),
    [
        ("fault", "error:Missing apikey", "13703030021"),
        ("fault", "error:Missing password", "13703030022"),
        ("fault", "error:APIKEY or password error", "13703030023"),
        ("locked", "error:Account is blocked", "13703030024"),
        ("ip blocked", "error:Unauthorized IP address", "13703030025"),
        ("no balance", "error:Account balance is insufficient", "13703030026"),
    ],
)
def test_a_refusal_of_the_account_defers_the_recipient_for_the_cooldown_and_opens_the_breaker(
    scene: Scene, provoke: str, reply: str, phone: str
) -> None:
    # Given 5C will refuse the account: a reply line, or the sandbox account's own state
    scene.refuse_account(provoke, reply)

    # When an MMS that may not fail over is posted for 5C
    job_id = scene.mms([phone], allow_failover=False)

    # Then it waits out the vendor-blocked cooldown with the vendor's line, and the fleet
    # stops calling 5C MMS
    recipient = scene.recipient(job_id, until=RESTING)
    assert recipient["status"] == "deferred"
    assert recipient["last_error"] == f"fivec: {reply} (attempt 1)"
    ((vendor, not_before, events),) = scene.deliveries(job_id)
    assert vendor == "fivec"
    waited = deferred_for(events, not_before)
    assert timedelta(seconds=COOLDOWN_S - 1) <= waited <= timedelta(seconds=COOLDOWN_S)
    assert [e.to_status for e in events] == ["claimed", "sending", "deferred"]
    reason, left_s = scene.breaker()
    assert reason == reply
    assert 0 < left_s <= COOLDOWN_S
    assert scene.sends_to(phone) == []


def test_no_balance_fails_the_mms_over_to_veesing_which_creates_audits_and_sends_it(
    scene: Scene,
) -> None:
    # Given the 5C account has no balance left
    scene.account(balance=0)

    # When an MMS is posted for 5C with the default routing (failover allowed)
    job_id = scene.mms(["13703030031"], title="五西 余额不足 转中昱")

    # Then 5C refused it and Veesing took it instead (its receipt comes an hour later here)
    recipient = scene.recipient(job_id, until=RESTING, timeout_s=15)
    ((vendor, _, events),) = scene.deliveries(job_id)
    (sent,) = scene.sends_to("13703030031")
    assert recipient["status"] == "submitted"
    assert vendor == "veesing"
    assert (sent["vendor"], sent["ref"]) == ("veesing", recipient["vendor_ref"])
    assert "failed over to veesing: fivec: error:Account balance is insufficient" in [
        e.detail for e in events
    ]
    assert scene.breaker()[0] == "error:Account balance is insufficient"


def test_the_generic_send_failure_error_msgid_is_retried_and_then_submitted_once(
    scene: Scene,
) -> None:
    # Given 5C answers the next send with its generic failure, "发送失败 error:msgid"
    scene.fault("error:30911175550001")

    # When an MMS is posted for 5C
    job_id = scene.mms(["13703030041"])

    # Then it was deferred once (a reply no table explains), retried, and submitted
    recipient = scene.recipient(job_id, until=RESTING - {"deferred"}, timeout_s=15)
    assert recipient["status"] == "submitted"
    assert recipient["vendor_ref"] == msgid_of(scene)
    ((_, _, events),) = scene.deliveries(job_id)
    assert [(e.to_status, e.detail) for e in events if e.to_status == "deferred"] == [
        ("deferred", "fivec: undocumented error: 'error:30911175550001' (attempt 1)")
    ]
    assert [e.to_status for e in events] == [
        "claimed",
        "sending",
        "deferred",
        "queued",
        "claimed",
        "sending",
        "submitted",
    ]
    assert len(scene.sends_to("13703030041")) == 1


def test_the_generic_send_failure_twice_fails_the_recipient_on_the_small_retry_budget(
    scene: Scene,
) -> None:
    # Given 5C answers the next two sends with its generic failure
    scene.fault("error:30911175550002", times=2)

    # When an MMS is posted for 5C
    job_id = scene.mms(["13703030042"])

    # Then it failed after HERALD_UNKNOWN_REPLY_ATTEMPTS (2), the line kept verbatim
    recipient = scene.recipient(job_id, until=RESTING - {"deferred"}, timeout_s=15)
    assert recipient["status"] == "failed"
    assert recipient["last_error"] == (
        "fivec: undocumented error: 'error:30911175550002' (gave up after 2 attempts)"
    )
    assert [r["outcome"] for r in scene.requests(SEND_PATH)] == ["fault:reply"] * 2
    assert scene.sends_to("13703030042") == []


@pytest.mark.parametrize(
    ("changes", "reply"),
    [
        ({"apikey": ""}, "error:Missing apikey"),
        ({"password": ""}, "error:Missing password"),
        ({"password": "not-the-password"}, "error:APIKEY or password error"),
        ({"username": "someone-else"}, "error:APIKEY or password error"),
    ],
)
def test_missing_or_wrong_credentials_are_refused_by_5c_and_raise_vendor_blocked(
    scene: Scene, changes: dict[str, str], reply: str
) -> None:
    # When the adapter sends with credentials 5C refuses
    mms = Mms("凭据", [Frame(5, "你好", Media("gif", GIF_BYTES))])
    with pytest.raises(NotSent) as raised:
        scene.adapter(scene.credentials(**changes)).send(["13703030051"], mms)

    # Then 5C answered the document's line for it, read as a refusal of the account
    assert type(raised.value) is VendorBlocked
    assert (raised.value.vendor, raised.value.reply) == ("fivec", reply)
    assert [(r["outcome"], r["detail"]) for r in scene.requests(SEND_PATH)] == [("error", reply)]


# --- the personalised batch (caixin_send_batch.php) -------------------------------------------


def test_a_personalised_batch_is_submitted_under_one_msgid_each_number_with_its_own_text(
    scene: Scene,
) -> None:
    # When a personalised MMS for three numbers, each with its own text, is posted
    texts = {
        "13703030061": "张三您好，您的订单已发货",
        "13703030062": "李四您好，您的积分为 120",
        "13703030063": "王五 & 赵六：欢迎 100% 光临",
    }
    job_id = scene.personalised(texts, title="个性 彩信")

    # Then 5C took the batch once, and every recipient is submitted under its msgid
    recipients = scene.recipients(job_id, until=RESTING)
    msgid = msgid_of(scene, BATCH_PATH)
    assert [(r["phone"], r["status"], r["vendor_ref"], r["text"]) for r in recipients] == [
        (phone, "submitted", msgid, text) for phone, text in texts.items()
    ]

    # And 5C's send log shows each number with its own text, under the one title and msgid
    for phone, text in texts.items():
        (sent,) = scene.sends_to(phone)
        assert (sent["ref"], sent["title"], sent["content"]) == (msgid, "个性 彩信", text)

    # And a pulled report settles each of them
    scene.report(
        [
            {"msgid": msgid, "mobile": "13703030061", "state": "DELIVRD", "layout": "4"},
            {"msgid": msgid, "mobile": "13703030062", "state": "UNDELIV", "layout": "5"},
            {"msgid": msgid, "mobile": "13703030063", "state": "DELIVRD", "layout": "6"},
        ]
    )
    settled = scene.recipients(job_id, until=RESTING - {"submitted"})
    assert [(r["phone"], r["status"], r["vendor_status"]) for r in settled] == [
        ("13703030061", "delivered", "DELIVRD"),
        ("13703030062", "undelivered", "UNDELIV"),
        ("13703030063", "delivered", "DELIVRD"),
    ]


@pytest.mark.parametrize(
    ("reply", "status", "last_error", "phone"),
    [
        ("error:Unrecognized encoding", "failed", "fivec: error:Unrecognized encoding", "71"),
        ("Error:MMS body too long.", "failed", "fivec: Error:MMS body too long.", "72"),
        (
            "error:Account is blocked",
            "deferred",
            "fivec: error:Account is blocked (attempt 1)",
            "73",
        ),
    ],
)
def test_a_refused_personalised_batch_leaves_each_recipient_as_the_reply_classifies_it(
    scene: Scene, reply: str, status: str, last_error: str, phone: str
) -> None:
    # Given 5C refuses the next batch with one of section 3.2's replies
    scene.fault(reply, path=BATCH_PATH)

    # When a personalised MMS for two numbers is posted
    phones = [f"137030300{phone}", f"137030301{phone}"]
    job_id = scene.personalised({phones[0]: "甲的文字", phones[1]: "乙的文字"})

    # Then both recipients end as the reply's class says, with its line
    recipients = scene.recipients(job_id, until=RESTING)
    assert [(r["phone"], r["status"], r["last_error"]) for r in recipients] == [
        (p, status, last_error) for p in phones
    ]
    assert scene.sends_to(phones[0]) == scene.sends_to(phones[1]) == []


# --- the report pull (api/recv/index.php), polled by beat -------------------------------------


def test_pulled_records_in_every_layout_on_a_gbk_page_settle_each_recipient_once(
    scene: Scene,
) -> None:
    # Given an MMS submitted to five numbers under one msgid
    phones = [f"1370303008{n}" for n in range(1, 6)]
    job_id = scene.mms(phones)
    scene.recipients(job_id, until={"submitted"})
    msgid = msgid_of(scene)

    # When 5C's page holds a record for each, in the 4-, 5- and 6-field layouts (one with a
    # blank extension, as for an account without one), encoded in GBK
    records = [
        ("13703030081", "DELIVRD", "4", None, "2026-03-01 10:00:01"),
        ("13703030082", "UNDELIV", "5", "3456", "2026-03-01 10:00:02"),
        ("13703030083", "EXPIRED", "6", "3456", "2026-03-01 10:00:03"),
        ("13703030084", "REJECTD", "5", "", "2026-03-01 10:00:04"),
        ("13703030085", "失败", "6", "", "2026-03-01 10:00:05"),
    ]
    scene.report(
        [
            {"msgid": msgid, "mobile": m, "state": s, "layout": lay, "ext": ext, "time": t}
            for m, s, lay, ext, t in records
        ],
        encoding="gbk",
    )

    # Then each recipient has its word's status, the word kept verbatim, at the record's time
    settled = scene.recipients(job_id, until=RESTING - {"submitted"})
    assert [
        (r["phone"], r["status"], r["vendor_status"], datetime.fromisoformat(r["reported_at"]))
        for r in settled
    ] == [
        ("13703030081", "delivered", "DELIVRD", shanghai_time("2026-03-01 10:00:01")),
        ("13703030082", "undelivered", "UNDELIV", shanghai_time("2026-03-01 10:00:02")),
        ("13703030083", "undelivered", "EXPIRED", shanghai_time("2026-03-01 10:00:03")),
        ("13703030084", "undelivered", "REJECTD", shanghai_time("2026-03-01 10:00:04")),
        ("13703030085", "unknown", "失败", shanghai_time("2026-03-01 10:00:05")),
    ]
    # And each recipient took exactly one report
    for _, _, events in scene.deliveries(job_id):
        assert [e.to_status for e in events][:3] == ["claimed", "sending", "submitted"]
        assert len(events) == 4

    # And the page was stored raw, as received (GBK, so not UTF-8), in one pull, each record once
    (page,) = scene.pulls()
    with pytest.raises(UnicodeDecodeError):
        page.decode("utf-8")
    assert page.decode("gbk").count(";") == 5
    parsed = parse_report_records(page)
    assert [
        (r.vendor_ref, r.phone, r.vendor_status, r.reported_at, r.extras.get("extno"))
        for r in parsed
    ] == [(msgid, m, state, shanghai_time(t), ext or None) for m, state, _, ext, t in records]
    # (the 6-field layout's 编号 column is kept as `serial`, the others have none)
    assert [r.extras.get("serial", "").isdigit() for r in parsed] == [
        layout == "6" for _, _, layout, _, _ in records
    ]

    # And 5C has nothing more: the whole page, and the per-number query, say no record
    assert scene.adapter().fetch_report_body() == NO_RECORD
    now = datetime.now(SHANGHAI)
    assert scene.adapter().query_reports(phones, now - timedelta(days=400), now) == []


def test_a_gbk_page_that_is_also_valid_utf8_keeps_its_word(scene: Scene) -> None:
    # Given an MMS submitted to one number
    job_id = scene.mms(["13703030091"])
    scene.recipient(job_id, until={"submitted"})

    # When 5C's GBK page holds one record whose word is 未知
    scene.report(
        [{"msgid": msgid_of(scene), "mobile": "13703030091", "state": "未知", "layout": "4"}],
        encoding="gbk",
    )

    # Then the word is kept as 5C wrote it
    recipient = scene.recipient(job_id, until=RESTING - {"submitted"})
    assert recipient["status"] == "unknown"
    assert recipient["vendor_status"] == "未知"


# --- balance (api/query/), through the adapter ------------------------------------------------


def test_the_balance_is_the_bare_number_5c_answers(scene: Scene) -> None:
    # Given the sandbox account holds a known balance
    scene.account(balance=4321)

    # When the adapter asks for the balance; Then it is that number, exactly
    assert scene.adapter().balance() == Decimal("4321")
    assert [r["outcome"] for r in scene.requests("/api/query/")] == ["ok"]


@pytest.mark.parametrize(
    ("provoke", "reply"),
    [
        ("wrong password", "error:APIKEY or password error"),
        ("wrong apikey", "error:APIKEY or password error"),
        ("ip blocked", "error:Unauthorized IP address"),
    ],
)
def test_each_documented_balance_error_raises_vendor_blocked(
    scene: Scene, provoke: str, reply: str
) -> None:
    # Given 5C will refuse the balance query for one of section 4.2's reasons
    credentials = scene.credentials()
    if provoke == "wrong password":
        credentials = scene.credentials(password="not-the-password")
    elif provoke == "wrong apikey":
        credentials = scene.credentials(apikey="not-the-apikey")
    else:
        scene.account(ip_blocked=True)

    # When the adapter asks for the balance
    with pytest.raises(NotSent) as raised:
        scene.adapter(credentials).balance()

    # Then it raises VendorBlocked with the vendor's line
    assert type(raised.value) is VendorBlocked
    assert (raised.value.vendor, raised.value.reply) == ("fivec", reply)
