"""What the webhook dispatcher asks of the store: new status changes, and each address's state.

The send path is not touched: every status change already writes a `DeliveryEvent`
(`move_deliveries`). The dispatcher *tails* those events in id order and copies the ones worth
telling (a status an application cares about, of a job with a callback address) into an outbox,
one row per event and address. Each address then gets its outbox rows in event order, one POST
at a time (a lease on its `WebhookEndpoint` row), and they are deleted only when the address
answered 2xx: at least once, and in order for each recipient, since the events of one delivery
are committed in id order (each one's UPDATE waits for the row lock of the one before).

Events of jobs without an address are read once by the tail and never copied.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from worker.enums import DeliveryStatus
from worker.store.models import (
    Delivery,
    DeliveryEvent,
    Job,
    WebhookEndpoint,
    WebhookOutboxEntry,
    WebhookTail,
)

TOLD_STATUSES = (
    DeliveryStatus.SUBMITTED,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.UNDELIVERED,
    DeliveryStatus.FAILED,
    DeliveryStatus.UNKNOWN,
    DeliveryStatus.CANCELLED,
)
"""The statuses a webhook tells: the vendor took it, and every way a recipient can end."""
MAX_GAPS = 1000
"""Most unseen id ranges the tail remembers; past that the oldest are given up (logged)."""
TAIL_ID = 1


@dataclass(frozen=True)
class TailOutcome:
    read: int
    """New event ids read (a full page means more may follow)."""
    copied: int
    """Events copied to the outbox."""
    gaps_given_up: int
    """Ids waited for longer than a transaction can stay open: rolled back, never coming."""


@dataclass(frozen=True)
class StatusChange:
    """One event as a webhook tells it."""

    event_id: int
    job_id: str
    delivery_id: int
    phone: str
    channel: str
    vendor: str
    status: str
    previous_status: str
    at: datetime
    detail: str | None


def _told(statement: Any) -> Any:
    """`statement` (over DeliveryEvent) narrowed to events a webhook tells."""
    return (
        statement.join(Delivery, col(Delivery.id) == col(DeliveryEvent.delivery_id))
        .join(Job, col(Job.id) == col(Delivery.job_id))
        .where(
            col(Job.callback_url).is_not(None),
            col(DeliveryEvent.to_status).in_(TOLD_STATUSES),
            col(DeliveryEvent.from_status) != col(DeliveryEvent.to_status),
        )
    )


def tail_events(
    session: Session, *, now: datetime, limit: int, gap_wait_s: float
) -> TailOutcome | None:
    """Copy the next `limit` delivery events (and any that filled a gap) to the outbox.

    The tail row is locked first (a no-op UPDATE), so workers tail one at a time, each seeing
    what the one before committed; but not when a plain read shows nothing new, so an idle
    store is not written to every tick. None when the store has no tail row yet (it is made,
    for the next call: a store made by `create_all` rather than the migrations).
    """
    if _nothing_new(session):
        return TailOutcome(read=0, copied=0, gaps_given_up=0)
    locked = session.exec(
        sa.update(WebhookTail)
        .where(col(WebhookTail.id) == TAIL_ID)
        .values(last_event_id=WebhookTail.last_event_id)
    )
    if not locked.rowcount:
        session.add(WebhookTail(id=TAIL_ID, last_event_id=0, gaps=[]))
        return None
    tail = session.exec(
        select(WebhookTail)
        .where(col(WebhookTail.id) == TAIL_ID)
        .execution_options(populate_existing=True)
    ).one()
    cursor = tail.last_event_id
    new_ids = list(
        session.exec(
            select(DeliveryEvent.id)
            .where(col(DeliveryEvent.id) > cursor)
            .order_by(col(DeliveryEvent.id))
            .limit(limit)
        )
    )
    gaps = [(int(lo), int(hi), since) for lo, hi, since in tail.gaps]
    filled = _ids_in_gaps(session, gaps)
    read = sorted(i for i in new_ids if i is not None)
    ranges = [(lo, hi) for lo, hi, _since in gaps]
    if read:
        ranges.append((cursor + 1, read[-1]))
    copied = _copy_told(session, ranges=ranges, now=now)
    still_missing = _subtract(gaps, filled)
    epoch = now.timestamp()
    previous = cursor
    for event_id in read:
        if event_id > previous + 1:
            still_missing.append((previous + 1, event_id - 1, epoch))
        previous = event_id
    kept = [(lo, hi, since) for lo, hi, since in still_missing if epoch - since <= gap_wait_s]
    given_up = sum(hi - lo + 1 for lo, hi, _ in still_missing) - sum(
        hi - lo + 1 for lo, hi, _ in kept
    )
    if len(kept) > MAX_GAPS:
        given_up += sum(hi - lo + 1 for lo, hi, _ in kept[:-MAX_GAPS])
        kept = kept[-MAX_GAPS:]
    tail.last_event_id = read[-1] if read else cursor
    tail.gaps = [[lo, hi, since] for lo, hi, since in kept]
    session.add(tail)
    return TailOutcome(read=len(read), copied=copied, gaps_given_up=given_up)


def _nothing_new(session: Session) -> bool:
    tail = session.exec(
        select(WebhookTail.last_event_id, WebhookTail.gaps).where(col(WebhookTail.id) == TAIL_ID)
    ).first()
    if tail is None or tail[1]:
        return False
    newest = session.exec(select(sa.func.max(DeliveryEvent.id))).one()
    return int(newest or 0) <= tail[0]


def _ids_in_gaps(session: Session, gaps: Sequence[tuple[int, int, float]]) -> set[int]:
    if not gaps:
        return set()
    within = sa.or_(*(col(DeliveryEvent.id).between(lo, hi) for lo, hi, _since in gaps))
    return {i for i in session.exec(select(DeliveryEvent.id).where(within)) if i is not None}


def _subtract(
    gaps: Sequence[tuple[int, int, float]], filled: set[int]
) -> list[tuple[int, int, float]]:
    """The gaps without the ids now seen: each range split around them."""
    left: list[tuple[int, int, float]] = []
    for lo, hi, since in gaps:
        start = lo
        for event_id in sorted(i for i in filled if lo <= i <= hi):
            if event_id > start:
                left.append((start, event_id - 1, since))
            start = event_id + 1
        if start <= hi:
            left.append((start, hi, since))
    return left


def _copy_told(session: Session, *, ranges: Sequence[tuple[int, int]], now: datetime) -> int:
    """Outbox rows for the told events with ids in `ranges` (ids never read before); how many."""
    if not ranges:
        return 0
    within = sa.or_(*(col(DeliveryEvent.id).between(lo, hi) for lo, hi in ranges))
    statement = _told(select(DeliveryEvent.id, Job.callback_url)).where(within)
    rows = [(event_id, url) for event_id, url in session.exec(statement) if event_id is not None]
    if not rows:
        return 0
    endpoints = _endpoint_ids(session, urls={url for _, url in rows})
    session.exec(
        sa.insert(WebhookOutboxEntry),
        params=[
            {"event_id": event_id, "endpoint_id": endpoints[url], "created_at": now}
            for event_id, url in sorted(rows)
        ],
    )
    return len(rows)


def _endpoint_ids(session: Session, *, urls: set[str]) -> dict[str, int]:
    """Each address's endpoint id, made for the addresses not seen before."""
    known = {
        url: endpoint_id
        for endpoint_id, url in session.exec(
            select(WebhookEndpoint.id, WebhookEndpoint.url).where(
                col(WebhookEndpoint.url).in_(urls)
            )
        )
        if endpoint_id is not None
    }
    for url in sorted(urls - known.keys()):
        endpoint = WebhookEndpoint(url=url)
        session.add(endpoint)
        session.flush()
        assert endpoint.id is not None
        known[url] = endpoint.id
    return known


def due_endpoints(
    session: Session, *, now: datetime, limit: int, busy: Sequence[int] = ()
) -> list[int]:
    """Addresses with something to POST, not waiting for a retry and not leased, oldest first.

    Looked up from the outbox, which holds only what is still to send: a job may well have an
    address of its own (`?job=...`), so the endpoints only grow.
    """
    waiting = col(WebhookEndpoint.id).in_(select(WebhookOutboxEntry.endpoint_id).distinct())
    statement = (
        select(WebhookEndpoint.id)
        .where(
            waiting,
            sa.or_(
                col(WebhookEndpoint.next_attempt_at).is_(None),
                col(WebhookEndpoint.next_attempt_at) <= now,
            ),
            sa.or_(
                col(WebhookEndpoint.leased_until).is_(None),
                col(WebhookEndpoint.leased_until) < now,
            ),
            col(WebhookEndpoint.id).not_in(busy),
        )
        .order_by(col(WebhookEndpoint.id))
        .limit(limit)
    )
    return [i for i in session.exec(statement) if i is not None]


def lease_endpoint(session: Session, *, endpoint_id: int, now: datetime, until: datetime) -> bool:
    """Take the address for one POST (fleet-wide, until `until`); False if another has it or
    it waits for its next try."""
    result = session.exec(
        sa.update(WebhookEndpoint)
        .where(
            col(WebhookEndpoint.id) == endpoint_id,
            sa.or_(
                col(WebhookEndpoint.leased_until).is_(None),
                col(WebhookEndpoint.leased_until) < now,
            ),
            sa.or_(
                col(WebhookEndpoint.next_attempt_at).is_(None),
                col(WebhookEndpoint.next_attempt_at) <= now,
            ),
        )
        .values(leased_until=until)
    )
    return bool(result.rowcount)


def pending_changes(
    session: Session, *, endpoint_id: int, limit: int
) -> tuple[str, list[StatusChange]]:
    """The address and its next `limit` status changes, in event order."""
    url = session.exec(
        select(WebhookEndpoint.url).where(col(WebhookEndpoint.id) == endpoint_id)
    ).one()
    statement = (
        select(DeliveryEvent, Delivery)
        .join(WebhookOutboxEntry, col(WebhookOutboxEntry.event_id) == col(DeliveryEvent.id))
        .join(Delivery, col(Delivery.id) == col(DeliveryEvent.delivery_id))
        .where(col(WebhookOutboxEntry.endpoint_id) == endpoint_id)
        .order_by(col(WebhookOutboxEntry.event_id))
        .limit(limit)
    )
    changes = [
        StatusChange(
            event_id=event.id or 0,
            job_id=delivery.job_id,
            delivery_id=delivery.id or 0,
            phone=delivery.phone,
            channel=delivery.channel.value,
            vendor=delivery.vendor,
            status=event.to_status,
            previous_status=event.from_status,
            at=event.at,
            detail=event.detail,
        )
        for event, delivery in session.exec(statement)
    ]
    return url, changes


def record_delivered(
    session: Session, *, endpoint_id: int, event_ids: Sequence[int], now: datetime
) -> None:
    """The address answered 2xx: those changes are done, and it is healthy again."""
    session.exec(
        sa.delete(WebhookOutboxEntry).where(col(WebhookOutboxEntry.event_id).in_(event_ids))
    )
    session.exec(
        sa.update(WebhookEndpoint)
        .where(col(WebhookEndpoint.id) == endpoint_id)
        .values(
            attempts=0,
            failing_since=None,
            next_attempt_at=None,
            leased_until=None,
            last_error=None,
            delivered_at=now,
        )
    )


@dataclass(frozen=True)
class Failure:
    attempts: int
    """Failed POSTs in a row, this one included."""
    wait_s: float
    """Until the next try."""
    dropped: int
    """Changes given up, being older than the retry window."""


def record_failed(
    session: Session,
    *,
    endpoint_id: int,
    now: datetime,
    error: str,
    wait_s: Callable[[int], float],
    give_up_before: datetime,
) -> Failure:
    """The POST failed: the address waits `wait_s(failures in a row)` before its next try, and
    its changes recorded before `give_up_before` are dropped."""
    endpoint = session.exec(
        select(WebhookEndpoint).where(col(WebhookEndpoint.id) == endpoint_id)
    ).one()
    endpoint.attempts += 1
    wait = wait_s(endpoint.attempts)
    endpoint.failing_since = endpoint.failing_since or now
    endpoint.next_attempt_at = now + timedelta(seconds=wait)
    endpoint.leased_until = None
    endpoint.last_error = error[:500]
    session.add(endpoint)
    dropped = session.exec(
        sa.delete(WebhookOutboxEntry).where(
            col(WebhookOutboxEntry.endpoint_id) == endpoint_id,
            col(WebhookOutboxEntry.created_at) < give_up_before,
        )
    )
    return Failure(attempts=endpoint.attempts, wait_s=wait, dropped=int(dropped.rowcount or 0))


@dataclass(frozen=True)
class WebhookBacklog:
    """What `/metrics` shows of the webhooks."""

    waiting: int
    """Status changes not yet taken by their address."""
    oldest_at: datetime | None
    """When the oldest of them was read from the events."""
    failing: int
    """Addresses whose last POST failed."""


def webhook_backlog(session: Session) -> WebhookBacklog:
    waiting, oldest_at = session.exec(
        select(sa.func.count(), sa.func.min(WebhookOutboxEntry.created_at))
    ).one()
    failing = session.exec(select(sa.func.count()).where(col(WebhookEndpoint.attempts) > 0)).one()
    return WebhookBacklog(waiting=int(waiting), oldest_at=oldest_at, failing=int(failing))


def release_endpoint(session: Session, *, endpoint_id: int) -> None:
    """Give the address back without a POST (it had nothing left to send)."""
    session.exec(
        sa.update(WebhookEndpoint)
        .where(col(WebhookEndpoint.id) == endpoint_id)
        .values(leased_until=None)
    )
