"""Status webhooks: each job's recipients' status changes POSTed, signed, to its callback address.

A thread of each worker's main process (a bootstep, like `worker.due_release`), never a task on
the `send` queue, so a receiver that hangs or fails holds no pool process and never slows
sending. Every HERALD_WEBHOOK_INTERVAL_S it

1. *tails* the delivery events (`worker.store.webhooks.tail_events`): the ones a webhook tells
   (submitted, delivered, undelivered, failed, unknown, cancelled) of jobs with an address are
   copied to the outbox; the workers take turns through a row lock;
2. leases each address that has changes waiting and is not backing off (one POST at a time per
   address, fleet-wide), and POSTs its oldest changes, up to HERALD_WEBHOOK_BATCH_SIZE, from a
   pool of HERALD_WEBHOOK_CONCURRENCY threads, so one slow address does not hold up the others.

A 2xx answer deletes the changes it carried; anything else (another status, a refused
connection, a timeout) leaves them for the next try, after an exponential backoff with full
jitter capped at HERALD_WEBHOOK_BACKOFF_MAX_S. A change is tried for HERALD_WEBHOOK_RETRY_FOR_S
after it happened, then dropped with a warning. So each change reaches a working receiver at
least once, and the changes of one recipient in the order they happened (docs/design.md,
promise 9). The loop runs only while HERALD_WEBHOOK_SECRET is set: nothing is sent unsigned.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
from celery import bootsteps

from worker.errors import StoreUnavailable
from worker.retry import backoff_s
from worker.settings import Settings, get_settings
from worker.store import session_scope, utcnow
from worker.store.webhooks import (
    StatusChange,
    due_endpoints,
    lease_endpoint,
    pending_changes,
    record_delivered,
    record_failed,
    release_endpoint,
    tail_events,
)
from worker.webhook_signing import SIGNATURE_HEADER, signature_header
from worker.webhook_urls import url_host

log = logging.getLogger(__name__)

EVENT_TYPE = "recipient.status"
TAIL_PAGE = 5000
"""Delivery events read per page of the tail; a tick reads up to `TAIL_PAGES_PER_TICK` pages."""
TAIL_PAGES_PER_TICK = 20
RETRY_BASE_S = 1.0


def webhook_body(changes: Sequence[StatusChange]) -> bytes:
    """The JSON a POST carries: `{"events": [...]}`, oldest first (README, "Webhooks")."""
    events = [
        {
            "id": change.event_id,
            "type": EVENT_TYPE,
            "job_id": change.job_id,
            "recipient_id": change.delivery_id,
            "phone": change.phone,
            "channel": change.channel,
            "vendor": change.vendor,
            "status": change.status,
            "previous_status": change.previous_status,
            "at": change.at.isoformat(),
            "detail": change.detail,
        }
        for change in changes
    ]
    return json.dumps({"events": events}, ensure_ascii=False, separators=(",", ":")).encode()


def gap_wait_s(settings: Settings) -> float:
    """How long an event id missing below the tail's cursor is waited for: longer than any
    transaction that writes events can stay open (a task's, at most its time limit)."""
    return max(60.0, 2.0 * settings.task_time_limit_s)


def lease_s(settings: Settings) -> float:
    """How long one POST holds its address: its connect, write and read timeouts, and room for
    the store writes around it."""
    return 4 * settings.webhook_timeout_s + 30


class WebhookDispatcher:
    """The tail and the POSTs of one worker process."""

    def __init__(self, settings: Settings, client: httpx.Client) -> None:
        assert settings.webhook_secret is not None
        self.settings = settings
        self.secret = settings.webhook_secret.get_secret_value()
        self.client = client
        self.pool = ThreadPoolExecutor(
            max_workers=settings.webhook_concurrency, thread_name_prefix="herald-webhook"
        )
        self.busy: set[int] = set()
        self.busy_lock = threading.Lock()
        self.stopping = threading.Event()

    def stop(self) -> None:
        """No new POST from now on (the worker is shutting down); one under way ends by its
        timeout at the latest, and what it carried is sent again by whoever leases next."""
        self.stopping.set()
        self.pool.shutdown(wait=False, cancel_futures=True)

    def tick(self) -> None:
        """Tail the new events, then start a POST for each address that is due."""
        self.tail()
        with self.busy_lock:
            busy = sorted(self.busy)
        free = self.settings.webhook_concurrency - len(busy)
        if free <= 0:
            return
        now = utcnow()
        with session_scope() as session:
            due = due_endpoints(session, now=now, limit=free, busy=busy)
        for endpoint_id in due:
            if self.stopping.is_set():
                return
            until = utcnow() + timedelta(seconds=lease_s(self.settings))
            with session_scope() as session:
                leased = lease_endpoint(session, endpoint_id=endpoint_id, now=now, until=until)
            if leased:
                with self.busy_lock:
                    self.busy.add(endpoint_id)
                self.pool.submit(self.deliver, endpoint_id)

    def tail(self) -> None:
        for _page in range(TAIL_PAGES_PER_TICK):
            with session_scope() as session:
                outcome = tail_events(
                    session,
                    now=utcnow(),
                    limit=TAIL_PAGE,
                    gap_wait_s=gap_wait_s(self.settings),
                )
            if outcome is None:
                continue
            if outcome.gaps_given_up:
                log.info(
                    "webhooks: %d delivery event ids never appeared (rolled back); "
                    "no longer waited for",
                    outcome.gaps_given_up,
                )
            if outcome.read < TAIL_PAGE:
                return

    def deliver(self, endpoint_id: int) -> None:
        """POSTs of the address's oldest changes (on a pool thread), one after the other while
        each is taken and full, so a big job's backlog needs no tick per batch; never raises."""
        try:
            while (
                self.post_next(endpoint_id)
                and not self.stopping.is_set()
                and self.lease_again(endpoint_id)
            ):
                pass
        except StoreUnavailable as exc:
            log.warning("webhooks: the store is unreachable (%s); the lease will expire", exc)
        except Exception:
            log.exception("webhooks: delivering to endpoint %d failed", endpoint_id)
        finally:
            with self.busy_lock:
                self.busy.discard(endpoint_id)

    def lease_again(self, endpoint_id: int) -> bool:
        now = utcnow()
        until = now + timedelta(seconds=lease_s(self.settings))
        with session_scope() as session:
            return lease_endpoint(session, endpoint_id=endpoint_id, now=now, until=until)

    def post_next(self, endpoint_id: int) -> bool:
        """One POST of the address's oldest changes; whether it was taken and full (so more
        may be waiting). The address is leased on entry and released on return."""
        with session_scope() as session:
            url, changes = pending_changes(
                session, endpoint_id=endpoint_id, limit=self.settings.webhook_batch_size
            )
            if not changes:
                release_endpoint(session, endpoint_id=endpoint_id)
                return False
        body = webhook_body(changes)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature_header(
                body, secret=self.secret, timestamp=int(time.time())
            ),
        }
        error: str | None = None
        try:
            response = self.client.post(url, content=body, headers=headers)
            if not response.is_success:
                error = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:200]
        now = utcnow()
        if error is None:
            with session_scope() as session:
                record_delivered(
                    session,
                    endpoint_id=endpoint_id,
                    event_ids=[c.event_id for c in changes],
                    now=now,
                )
            log.debug("webhooks: %d changes to %s", len(changes), url_host(url))
            return len(changes) == self.settings.webhook_batch_size
        with session_scope() as session:
            failure = record_failed(
                session,
                endpoint_id=endpoint_id,
                now=now,
                error=error,
                wait_s=self.retry_wait_s,
                give_up_before=now - timedelta(seconds=self.settings.webhook_retry_for_s),
            )
        log.warning(
            "webhooks: POST to %s (endpoint %d) failed: %s; %d failures in a row, next try in "
            "%.1f s",
            url_host(url),
            endpoint_id,
            error,
            failure.attempts,
            failure.wait_s,
        )
        if failure.dropped:
            log.warning(
                "webhooks: gave up %d status changes for %s (endpoint %d): older than "
                "HERALD_WEBHOOK_RETRY_FOR_S and the address still fails",
                failure.dropped,
                url_host(url),
                endpoint_id,
            )
        return False

    def retry_wait_s(self, attempts: int) -> float:
        return backoff_s(attempts, base_s=RETRY_BASE_S, cap_s=self.settings.webhook_backoff_max_s)


class WebhookLoop:
    """A `WebhookDispatcher` ticked on a daemon thread; outages are logged once, not every tick."""

    def __init__(self, dispatcher: WebhookDispatcher, interval_s: float) -> None:
        self.dispatcher = dispatcher
        self.interval_s = interval_s
        self.failing = False

    def run(self) -> None:
        while not self.dispatcher.stopping.wait(self.interval_s):
            try:
                self.dispatcher.tick()
            except StoreUnavailable as exc:
                if not self.failing:
                    log.warning("webhooks: the store is unreachable (%s); trying again", exc)
                self.failing = True
                continue
            except Exception:
                log.exception("webhooks: a dispatch round failed; trying again")
                continue
            if self.failing:
                log.info("webhooks: the store answers again")
            self.failing = False

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="herald-webhooks", daemon=True)
        thread.start()
        return thread


def webhook_client(settings: Settings) -> httpx.Client:
    """The HTTP client of the POSTs: every phase timed out, no redirect followed (a receiver
    that moved must be given its new address, not have signed status changes sent on)."""
    return httpx.Client(
        timeout=httpx.Timeout(settings.webhook_timeout_s),
        follow_redirects=False,
        limits=httpx.Limits(max_connections=2 * settings.webhook_concurrency),
        headers={"User-Agent": "herald-webhooks/1"},
    )


class WebhookStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """The worker bootstep that runs a `WebhookLoop` in the worker's main process, while
    HERALD_WEBHOOK_SECRET is set."""

    requires = ("celery.worker.components:Pool",)

    def __init__(self, parent: object, **kwargs: object) -> None:
        super().__init__(parent, **kwargs)
        self.dispatcher: WebhookDispatcher | None = None

    def start(self, parent: object) -> None:
        settings = get_settings()
        if settings.webhook_secret is None:
            log.info("webhooks: off (HERALD_WEBHOOK_SECRET is not set)")
            return
        self.dispatcher = WebhookDispatcher(settings, webhook_client(settings))
        WebhookLoop(self.dispatcher, settings.webhook_interval_s).start()
        log.info("webhooks: status changes POSTed every %g s", settings.webhook_interval_s)

    def stop(self, parent: object) -> None:
        if self.dispatcher is not None:
            self.dispatcher.stop()
