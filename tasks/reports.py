"""Beat's pull of 5C delivery reports (`api/recv/index.php`), which the vendor forgets once read.

One poll at a time across every beat and worker (a Redis lock, released only by its holder);
no fetch while the store is unreachable, since what is fetched could not be kept. A page the
vendor handed over is first written to the local spool (`HERALD_DATA_DIR/spool/fivec-reports/`,
synced to disk: worker/spool.py), then committed as a `VendorPush` of kind `reports`, tried
again with backoff while the store is unreachable, and only then removed from the spool. If the
store stays away longer, the page waits in the spool; the next poll or sweep on this machine
imports it (`import_spooled_pages`). From the store it is applied like a push: idempotently,
matched on msgid + mobile as the document advises, and kept for the sweeper while any of its
records names a delivery not stored yet.

What no code can save is a page whose worker died between the vendor's answer and the spool
write: the vendor has forgotten it. Its recipients stay `submitted` until the report deadline
(`HERALD_REPORT_DEADLINE_S`) makes them `unknown` (worker/store/sweeper.py).
"""

from __future__ import annotations

import base64
import logging
import time
from pathlib import Path
from time import monotonic, sleep

import redis
import sqlalchemy as sa
from redis.exceptions import LockError

from tasks.pushes import apply_push
from worker.app import app
from worker.clients import fivec_adapter
from worker.errors import ConfigurationError, SpoolError, StoreUnavailable, VendorError
from worker.names import FIVEC_LAST_POLL_KEY, FIVEC_REPORT_POLL_LOCK_KEY, POLL_FIVEC_REPORTS_TASK
from worker.redis_client import redis_client
from worker.settings import get_settings, vendor_configured
from worker.spool import Spool
from worker.store import get_engine, record_push, session_scope, utcnow

log = logging.getLogger(__name__)


POLL_LOCK_MARGIN_S = 5
"""How long the poll lock outlives the task limit: the limit ends a poll, so a lock whose
holder was killed frees the next poll soon after, not minutes later."""
STORE_RETRY_FIRST_WAIT_S = 0.5
STORE_RETRY_MAX_WAIT_S = 5.0


@app.task(name=POLL_FIVEC_REPORTS_TASK)
def poll_fivec_reports() -> str:
    settings = get_settings()
    if not vendor_configured("fivec"):
        return "fivec not configured"
    lock = redis_client().lock(
        FIVEC_REPORT_POLL_LOCK_KEY,
        timeout=settings.task_time_limit_s + POLL_LOCK_MARGIN_S,
        blocking=False,
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


def report_spool() -> Spool:
    """Where fetched pages wait until the store holds them (on this machine)."""
    return Spool(get_settings().data_dir / "spool" / "fivec-reports")


def fetch_and_keep_reports() -> str:
    try:
        with get_engine().connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        log.error("store unreachable, not fetching 5C reports (they would be lost): %s", exc)
        return "store unreachable"
    for imported in import_spooled_pages():
        apply_push(imported)
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
    spooled = spool_page(payload)
    push_id = keep_page(payload)
    if push_id is None:
        if spooled is None:
            log.critical(
                "a 5C report page (%s bytes) was neither spooled nor stored: its records are "
                "lost, and their recipients become unknown at the report deadline",
                payload["bytes"],
            )
            return "page lost"
        log.error("the 5C report page stays spooled (%s) for the next poll or sweep", spooled.name)
        return "store unreachable: page spooled"
    if spooled is not None:
        try:
            report_spool().remove(spooled)
        except SpoolError as exc:  # stored already: a later import finds it by its digest
            log.error("5C report spool: %s", exc)
    return str(apply_push(push_id))


def spool_page(payload: dict[str, str]) -> Path | None:
    """Write the page to the spool before anything else; None when the disk refused it."""
    try:
        return report_spool().write(payload, now=utcnow())
    except SpoolError as exc:
        log.error("5C report page not spooled (%s); only the store can keep it now", exc)
        return None


def keep_page(payload: dict[str, str]) -> int | None:
    """Commit the page as a push, tried again with capped backoff while the store is
    unreachable, for HERALD_STORE_RETRY_S but never past half the task limit (the poll must end
    on its own); the push's id, or None when the store stayed away."""
    settings = get_settings()
    deadline = monotonic() + min(settings.store_retry_s, settings.task_time_limit_s / 2)
    wait_s = STORE_RETRY_FIRST_WAIT_S
    while True:
        try:
            return record_page(payload)
        except StoreUnavailable as exc:
            if monotonic() + wait_s >= deadline:
                log.error("5C report page not stored: %s", exc)
                return None
            log.warning("store unreachable, keeping the 5C report page again in %.1f s", wait_s)
            sleep(wait_s)
            wait_s = min(2 * wait_s, STORE_RETRY_MAX_WAIT_S)


def record_page(payload: dict[str, str]) -> int:
    with session_scope() as session:
        push, _ = record_push(
            session, vendor="fivec", kind="reports", payload=payload, now=utcnow()
        )
        push_id = push.id
    assert push_id is not None
    return push_id


def import_spooled_pages() -> list[int]:
    """Commit to the store the pages a poll spooled but could not keep (a page stored before
    is found by its digest, not stored twice), removing each from the spool once it is held;
    returns their pushes' ids, to apply. Raises `StoreUnavailable` while the store is away; a
    spool folder that cannot be read or changed is logged, never raised (the sweep goes on)."""
    spool = report_spool()
    imported: list[int] = []
    try:
        for path in spool.pending():
            try:
                payload = spool.read(path)
            except SpoolError as exc:
                log.error("%s: set aside for an operator", exc)
                spool.set_aside(path)
                continue
            if payload is None:
                continue  # another process imported it
            push_id = record_page(payload)
            imported.append(push_id)
            log.warning("a spooled 5C report page is now in the store (push %s)", push_id)
            spool.remove(path)
    except SpoolError as exc:
        log.error("5C report spool: %s", exc)
    return imported


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
