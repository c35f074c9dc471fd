"""What the operator page (`/ui`) reads from the store: recent jobs with their counts by status,
a job's recipients a page at a time, today's sends per vendor product, and deferred recipients
grouped by the rule that holds them.

Counts are GROUP BY queries, so a page costs the same for a job of 10 recipients as for one of
100,000; no query here returns a job's recipients whole.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from worker.enums import FINAL, DeliveryStatus, JobStatus
from worker.store.jobs import job_status_of
from worker.store.models import Delivery, Job
from worker.store.search import status_counts_of_jobs


class DeferralRule(StrEnum):
    """Why a deferred recipient waits, read from the reason herald wrote (`last_error`)."""

    MINUTE = "minute"  # herald's one-message-per-minute rule of a number
    DAILY_CAP = "daily_cap"  # a daily cap of the number or of the account
    PACING = "pacing"  # herald's requests-per-second cap of the vendor product
    BACKOFF = "backoff"  # a retry after a passing error (or a resend of an ambiguous one)
    BREAKER = "breaker"  # the vendor refuses the account; waiting for its breaker to close
    OTHER = "other"  # anything else: the vendor's own rate-limit or cap reply, in its words


DEFERRAL_PHRASES: Sequence[tuple[DeferralRule, str]] = (
    (DeferralRule.MINUTE, "%one-message-per-minute rule%"),
    (DeferralRule.DAILY_CAP, "%daily cap%"),
    (DeferralRule.PACING, "%request-rate cap%"),
    (DeferralRule.BREAKER, "%is refusing the account%"),
    (DeferralRule.BACKOFF, "%(attempt %"),
    (DeferralRule.BACKOFF, "%(resending: HERALD!_RESEND!_AMBIGUOUS)%"),
)
"""The phrases tasks/send.py and tasks/settle.py write into a deferred row's `last_error`
(`held by the one-message-per-minute rule until ...`, `herald's request-rate cap`, `... (attempt
3)`), as LIKE patterns with `!` as the escape; the first that matches names the rule."""


@dataclass(frozen=True)
class JobCounts:
    """One job's recipients counted by status."""

    by_status: Mapping[DeliveryStatus, int]

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    @property
    def final(self) -> int:
        return sum(n for status, n in self.by_status.items() if status in FINAL)

    @property
    def progress(self) -> int:
        """Whole percent of recipients in a final status; 100 only when every one is."""
        if self.total == 0:
            return 100
        return self.final * 100 // self.total

    @property
    def status(self) -> JobStatus | None:
        return job_status_of(set(self.by_status)) if self.by_status else None


@dataclass(frozen=True)
class Deferred:
    """A deferred recipient, the rule that holds it and until when."""

    delivery: Delivery
    rule: DeferralRule


def recent_jobs(session: Session, *, limit: int, offset: int = 0) -> list[Job]:
    """Jobs, newest first."""
    statement = (
        select(Job).order_by(col(Job.created_at).desc(), col(Job.id)).limit(limit).offset(offset)
    )
    return list(session.exec(statement))


def job_counts(session: Session, job_ids: Sequence[str]) -> dict[str, JobCounts]:
    """Each job's recipients counted by status (one GROUP BY); every id given has an entry."""
    counts = status_counts_of_jobs(session, job_ids)
    return {job_id: JobCounts(counts.get(job_id, {})) for job_id in job_ids}


def recipients_page(
    session: Session,
    *,
    job_id: str,
    limit: int,
    offset: int = 0,
    status: DeliveryStatus | None = None,
) -> list[Delivery]:
    """One page of a job's recipients in the order they were accepted."""
    statement = select(Delivery).where(col(Delivery.job_id) == job_id)
    if status is not None:
        statement = statement.where(col(Delivery.status) == status)
    statement = statement.order_by(col(Delivery.id)).limit(limit).offset(offset)
    return list(session.exec(statement))


def sent_since(session: Session, *, since: datetime) -> dict[str, int]:
    """Recipients each vendor product (`vendor:channel`) took since `since` (the vendor's
    midnight, for today's sends): what the daily caps count."""
    statement = (
        select(Delivery.vendor, Delivery.channel, func.count())
        .where(col(Delivery.submitted_at) >= since)
        .group_by(col(Delivery.vendor), col(Delivery.channel))
    )
    return {f"{vendor}:{channel}": int(count) for vendor, channel, count in session.exec(statement)}


def deferral_rule_expression() -> sa.ColumnElement[Any]:
    """The rule of a deferred row, as SQL (one CASE over `last_error`), so that rows are grouped
    and filtered by rule in the database."""
    reason = col(Delivery.last_error)
    whens = [(reason.like(pattern, escape="!"), rule.value) for rule, pattern in DEFERRAL_PHRASES]
    return sa.case(*whens, else_=DeferralRule.OTHER.value)


def deferred_by_rule(session: Session) -> dict[DeferralRule, int]:
    """Deferred recipients counted by the rule that holds them (rules holding none left out)."""
    rule = deferral_rule_expression().label("rule")
    statement = (
        select(rule, func.count())
        .where(col(Delivery.status) == DeliveryStatus.DEFERRED)
        .group_by(rule)
    )
    return {DeferralRule(name): int(count) for name, count in session.exec(statement)}


def deferred_page(
    session: Session, *, rule: DeferralRule | None, limit: int, offset: int = 0
) -> list[Deferred]:
    """Deferred recipients, the soonest due first; only those of `rule` when one is given."""
    expression = deferral_rule_expression()
    statement = select(Delivery, expression).where(col(Delivery.status) == DeliveryStatus.DEFERRED)
    if rule is not None:
        statement = statement.where(expression == rule.value)
    statement = (
        statement.order_by(col(Delivery.not_before), col(Delivery.id)).limit(limit).offset(offset)
    )
    return [Deferred(delivery, DeferralRule(name)) for delivery, name in session.exec(statement)]
