"""The last balance read from each vendor product (beat's balance poll, or `herald balance`)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from worker.store.models import VendorBalance


def record_balance(
    session: Session, *, product: str, balance: str | None, error: str | None, now: datetime
) -> VendorBalance:
    row = session.get(VendorBalance, product) or VendorBalance(product=product)
    row.balance, row.error, row.checked_at = balance, error, now
    session.add(row)
    return row


def balances(session: Session) -> dict[str, VendorBalance]:
    return {row.product: row for row in session.exec(select(VendorBalance))}
