"""Delivery reports settled in bulk: the common case of `apply_report` for many reports at once.

Almost every report names a delivery that waits for one (`sending`, `submitted`, `unknown`).
For a batch of such reports this module does what the first step of `apply_report` does for
one, in a fixed number of statements whatever the batch's size: one SELECT matches every report
(vendor, channel, vendor_ref, phone) to its deliveries in a reportable status, one UPDATE per
target status moves them (each row with its own vendor status, report time and detail), and one
INSERT writes their history. A report it does not settle (no delivery waits for it) is left to
`apply_report`, which knows the rarer cases: a later final report, a repeat, the match by phone
of a delivery whose batch id was never stored, a report for a batch not stored yet.

Each UPDATE is conditional on the status the SELECT saw, so a delivery another process moved in
between is not moved again here; its report then goes through `apply_report` as well.

The reports of one call must name distinct deliveries (distinct keys): two reports of one
delivery are applied in order, the second by `apply_report` once the first is settled.
PostgreSQL gets each column as one array (`unnest`), SQLite a `VALUES` list.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlmodel import Session

from worker.delivery_reports import DeliveryReport
from worker.enums import REPORTABLE, Channel, DeliveryStatus
from worker.store.models import DeliveryEvent

ReportKey = tuple[str, Channel, str, str]
"""What a report names: vendor, channel, vendor_ref, phone."""

SQLITE_ROWS_PER_STATEMENT = 1000
"""SQLite binds every value of a VALUES list separately; its limit is 32,766 per statement."""


def report_key(report: DeliveryReport) -> ReportKey:
    return (report.vendor, report.channel, report.vendor_ref, report.phone)


def report_detail_text(report: DeliveryReport) -> str:
    """The history's words for a report (the same as `apply_report`'s)."""
    return f"report {report.vendor_status or report.status.value}"


@dataclass(frozen=True)
class Move:
    """One delivery to move for one report, from the status it was seen in."""

    delivery_id: int
    from_status: str
    report: DeliveryReport
    reported_at: datetime


def settle_reports(
    session: Session, *, reports: Sequence[DeliveryReport], now: datetime
) -> list[bool]:
    """Settle, in bulk, the deliveries waiting for these reports (one report per delivery key);
    for each report, whether it moved a delivery. Those it did not are for `apply_report`."""
    index_of = {report_key(report): n for n, report in enumerate(reports)}
    if len(index_of) != len(reports):
        raise ValueError("settle_reports takes one report per delivery")
    moves = [
        Move(delivery_id, from_status, reports[n], reports[n].reported_at or now)
        for delivery_id, from_status, n in match(session, reports=reports, index_of=index_of)
    ]
    settled = [False] * len(reports)
    events: list[dict[str, Any]] = []
    for group in by_target(moves):
        moved = set(move(session, moves=group, now=now))
        for each in group:
            if each.delivery_id in moved:
                settled[index_of[report_key(each.report)]] = True
                events.append(
                    {
                        "delivery_id": each.delivery_id,
                        "at": now,
                        "from_status": each.from_status,
                        "to_status": each.report.status.value,
                        "detail": report_detail_text(each.report),
                    }
                )
    if events:
        record_history(session, events=events)
    return settled


def record_history(session: Session, *, events: list[dict[str, Any]]) -> None:
    """One INSERT of the moves' `DeliveryEvent` rows (on PostgreSQL one array per column)."""
    if not is_postgresql(session):
        session.execute(sa.insert(DeliveryEvent), events)
        return
    statement = sa.text(
        "INSERT INTO deliveryevent (delivery_id, at, from_status, to_status, detail)"
        " SELECT u.delivery_id, :at, u.from_status, u.to_status, u.detail"
        " FROM unnest(CAST(:ids AS integer[]), CAST(:froms AS text[]), CAST(:tos AS text[]),"
        " CAST(:details AS text[])) AS u(delivery_id, from_status, to_status, detail)"
    )
    params = {
        "at": events[0]["at"],
        "ids": [e["delivery_id"] for e in events],
        "froms": [e["from_status"] for e in events],
        "tos": [e["to_status"] for e in events],
        "details": [e["detail"] for e in events],
    }
    session.execute(statement, params)


def by_target(moves: list[Move]) -> Iterator[list[Move]]:
    """Moves grouped by what their UPDATE sets: the target status, and whether the report
    carries a detail (a report without one leaves the stored detail as it is)."""
    groups: dict[tuple[DeliveryStatus, bool], list[Move]] = {}
    for each in moves:
        groups.setdefault((each.report.status, each.report.detail is not None), []).append(each)
    yield from groups.values()


def match(
    session: Session, *, reports: Sequence[DeliveryReport], index_of: dict[ReportKey, int]
) -> list[tuple[int, str, int]]:
    """(delivery id, its status, the index of its report) for every delivery in a reportable
    status that a report names."""
    by_product: dict[tuple[str, Channel], list[DeliveryReport]] = {}
    for report in reports:
        by_product.setdefault((report.vendor, report.channel), []).append(report)
    found: list[tuple[int, str, int]] = []
    for (vendor, channel), group in by_product.items():
        rows = (
            match_postgresql(session, vendor=vendor, channel=channel, reports=group)
            if is_postgresql(session)
            else match_sqlite(session, vendor=vendor, channel=channel, reports=group)
        )
        found.extend(
            (delivery_id, status, index_of[(vendor, channel, ref, phone)])
            for delivery_id, status, ref, phone in rows
        )
    return found


REPORTABLE_VALUES = tuple(status.value for status in REPORTABLE)


def match_postgresql(
    session: Session, *, vendor: str, channel: Channel, reports: list[DeliveryReport]
) -> list[tuple[int, str, str, str]]:
    # One index lookup per report, whatever the planner's statistics say (a batch of new
    # deliveries may not be analysed yet): the LATERAL subquery with OFFSET 0 is never
    # flattened into a join that could scan all of the vendor's deliveries once per report.
    statement = sa.text(
        "SELECT d.id, d.status, k.ref, k.phone"
        " FROM unnest(CAST(:refs AS text[]), CAST(:phones AS text[])) AS k(ref, phone)"
        " CROSS JOIN LATERAL (SELECT id, status FROM delivery"
        " WHERE vendor = :vendor AND channel = :channel AND vendor_ref = k.ref"
        " AND phone = k.phone AND status = ANY(CAST(:reportable AS text[])) OFFSET 0) AS d"
    )
    params = {
        "refs": [r.vendor_ref for r in reports],
        "phones": [r.phone for r in reports],
        "vendor": vendor,
        "channel": channel.value,
        "reportable": list(REPORTABLE_VALUES),
    }
    return [tuple(row) for row in session.execute(statement, params)]


def match_sqlite(
    session: Session, *, vendor: str, channel: Channel, reports: list[DeliveryReport]
) -> list[tuple[int, str, str, str]]:
    found: list[tuple[int, str, str, str]] = []
    for part in slices(reports, SQLITE_ROWS_PER_STATEMENT):
        pairs = ", ".join(f"(:ref{n}, :phone{n})" for n in range(len(part)))
        statement = sa.text(
            "SELECT id, status, vendor_ref, phone FROM delivery"
            " WHERE vendor = :vendor AND channel = :channel"
            f" AND status IN {REPORTABLE_VALUES!r}"
            f" AND (vendor_ref, phone) IN (VALUES {pairs})"
        )
        params: dict[str, Any] = {"vendor": vendor, "channel": channel.value}
        for n, report in enumerate(part):
            params[f"ref{n}"] = report.vendor_ref
            params[f"phone{n}"] = report.phone
        found.extend(tuple(row) for row in session.execute(statement, params))
    return found


def move(session: Session, *, moves: list[Move], now: datetime) -> list[int]:
    """One group's UPDATE (same target status, detail or not); the ids it moved."""
    if is_postgresql(session):
        return move_postgresql(session, moves=moves, now=now)
    return [
        delivery_id
        for part in slices(moves, SQLITE_ROWS_PER_STATEMENT)
        for delivery_id in move_sqlite(session, moves=part, now=now)
    ]


def move_postgresql(session: Session, *, moves: list[Move], now: datetime) -> list[int]:
    first = moves[0].report
    with_detail = first.detail is not None
    detail_set = ", report_detail = CAST(u.detail AS json)" if with_detail else ""
    # `d.id = ANY(:ids)` lets the primary key find the rows, whatever the statistics say.
    statement = sa.text(
        "UPDATE delivery AS d SET status = :to, updated_at = :now,"
        f" vendor_status = u.vendor_status, reported_at = u.reported_at{detail_set}"
        " FROM unnest(CAST(:ids AS integer[]), CAST(:froms AS text[]),"
        " CAST(:vendor_statuses AS text[]), CAST(:reported AS timestamptz[]),"
        " CAST(:details AS text[])) AS u(id, from_status, vendor_status, reported_at, detail)"
        " WHERE d.id = u.id AND d.status = u.from_status AND d.id = ANY(CAST(:ids AS integer[]))"
        " RETURNING d.id"
    )
    params = {
        "to": first.status.value,
        "now": now,
        "ids": [m.delivery_id for m in moves],
        "froms": [m.from_status for m in moves],
        "vendor_statuses": [m.report.vendor_status for m in moves],
        "reported": [m.reported_at for m in moves],
        "details": [json.dumps(m.report.detail) if with_detail else None for m in moves],
    }
    return [row[0] for row in session.execute(statement, params)]


def move_sqlite(session: Session, *, moves: Sequence[Move], now: datetime) -> list[int]:
    dialect = session.get_bind().dialect
    time_processor = sa.DateTime(timezone=True).dialect_impl(dialect).bind_processor(dialect)
    assert time_processor is not None

    def as_time(value: datetime) -> Any:
        return time_processor(value.astimezone(UTC))

    first = moves[0].report
    with_detail = first.detail is not None
    detail_set = ", report_detail = u.detail" if with_detail else ""
    rows = ", ".join(
        f"(:id{n}, :from{n}, :vendor_status{n}, :reported{n}, :detail{n})"
        for n in range(len(moves))
    )
    # The statement begins with UPDATE, not WITH: Python's sqlite3 opens its transaction only
    # before a statement it sees is a write, and a WITH ... UPDATE would run outside the batch's
    # transaction, committed at once and never rolled back with it.
    statement = sa.text(
        "UPDATE delivery SET status = :to, updated_at = :now,"
        f" vendor_status = u.vendor_status, reported_at = u.reported_at{detail_set}"
        " FROM (SELECT column1 AS id, column2 AS from_status, column3 AS vendor_status,"
        f" column4 AS reported_at, column5 AS detail FROM (VALUES {rows})) AS u"
        " WHERE delivery.id = u.id AND delivery.status = u.from_status"
        " RETURNING delivery.id"
    )
    params: dict[str, Any] = {"to": first.status.value, "now": as_time(now)}
    for n, each in enumerate(moves):
        params[f"id{n}"] = each.delivery_id
        params[f"from{n}"] = each.from_status
        params[f"vendor_status{n}"] = each.report.vendor_status
        params[f"reported{n}"] = as_time(each.reported_at)
        params[f"detail{n}"] = json.dumps(each.report.detail) if with_detail else None
    return [row[0] for row in session.execute(statement, params)]


T = TypeVar("T")


def slices(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"
