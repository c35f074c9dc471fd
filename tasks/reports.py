"""Beat's pull of 5C delivery reports (`api/recv/index.php`), which the vendor forgets once read.

One poll at a time across every beat and worker (a Redis lock, released only by its holder);
no fetch while the store is unreachable, since what is fetched could not be kept; the raw reply
(bytes, time) is committed as a `VendorPush` of kind `reports` before anything parses it. From
there it is applied like a push: idempotently, matched on msgid + mobile as the document
advises, and kept for the sweeper while any of its records names a delivery not stored yet.
"""

from __future__ import annotations

import base64
import logging
import time

import redis
import sqlalchemy as sa
from redis.exceptions import LockError

from tasks.pushes import apply_push
from worker.app import app
from worker.clients import fivec_adapter
from worker.errors import ConfigurationError, VendorError
from worker.names import FIVEC_LAST_POLL_KEY, FIVEC_REPORT_POLL_LOCK_KEY, POLL_FIVEC_REPORTS_TASK
from worker.redis_client import redis_client
from worker.settings import get_settings, vendor_configured
from worker.store import get_engine, record_push, session_scope, utcnow

log = logging.getLogger(__name__)


@app.task(name=POLL_FIVEC_REPORTS_TASK)
def poll_fivec_reports() -> str:
    settings = get_settings()
    if not vendor_configured("fivec"):
        return "fivec not configured"
    lock = redis_client().lock(
        FIVEC_REPORT_POLL_LOCK_KEY, timeout=settings.task_time_limit_s + 30, blocking=False
    )
    if not lock.acquire():
        return "another poll is running"
    try:
        return fetch_and_keep_reports()
    finally:
        try:
            lock.release()
        except LockError:
            log.error("the 5C poll outlived its lock; another poll may have overlapped it")


def fetch_and_keep_reports() -> str:
    try:
        with get_engine().connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        log.error("store unreachable, not fetching 5C reports (they would be lost): %s", exc)
        return "store unreachable"
    try:
        page = fivec_adapter(get_settings()).fetch_report_page()
    except (VendorError, ConfigurationError) as exc:
        log.error("5C report fetch failed: %s", exc)
        return f"fetch failed: {exc}"
    note_poll_answered()
    if page.body.strip().lower() == b"no record":
        return "no record"  # nothing was handed over, so nothing can be lost
    payload = {
        "fetched_at": utcnow().isoformat(),
        "body_base64": base64.b64encode(page.body).decode("ascii"),
        "bytes": str(len(page.body)),
        "encoding": page.charset or body_encoding(page.body),
    }
    with session_scope() as session:
        push, _ = record_push(
            session, vendor="fivec", kind="reports", payload=payload, now=utcnow()
        )
        push_id = push.id
    assert push_id is not None
    return str(apply_push(push_id))


def note_poll_answered() -> None:
    """For the report-poll lag metric (worker/api/metrics.py); never in the way of the page."""
    try:
        redis_client().set(FIVEC_LAST_POLL_KEY, f"{time.time():.3f}")
    except redis.RedisError as exc:
        log.warning("could not note the 5C poll's time: %r", exc)


def body_encoding(body: bytes) -> str:
    """How the page is encoded, as the parser will read it (section 5.1: UTF-8 or GBK)."""
    for encoding in ("utf-8", "gbk"):
        try:
            body.decode(encoding)
        except UnicodeDecodeError:
            continue
        return encoding
    return "unknown"
