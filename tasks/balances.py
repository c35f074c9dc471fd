"""Beat's balance poll: every configured vendor product's balance, kept in the store, and a
warning in the log (and in `GET /v1/vendors`) when one is below its threshold."""

from __future__ import annotations

import logging
from decimal import Decimal

from tasks.senders import balance_of
from worker.app import app
from worker.enums import Channel
from worker.errors import ConfigurationError, VendorError
from worker.names import BALANCE_POLL_ONCE_KEY, POLL_BALANCES_TASK
from worker.redis_client import redis_client
from worker.settings import PRODUCTS, balance_threshold, get_settings, vendor_configured
from worker.store import VendorBalance, record_balance, session_scope, utcnow

log = logging.getLogger(__name__)


@app.task(name=POLL_BALANCES_TASK)
def poll_balances(force: bool = False) -> dict[str, str | None]:
    """Read and keep every configured product's balance; one warning per low one per poll.

    Runs at most once per interval across the fleet (two beats by mistake still give one read
    and one warning per interval); `force` (the `herald balance` command) reads regardless.
    """
    interval_ms = int(get_settings().balance_interval_s * 1000 * 0.9)
    first = redis_client().set(BALANCE_POLL_ONCE_KEY, "1", nx=True, px=max(1, interval_ms))
    if not (first or force):
        return {}
    read: dict[str, str | None] = {}
    for product in PRODUCTS:
        vendor, channel = product.split(":")
        if not vendor_configured(vendor):
            continue
        row = read_balance(product, vendor, Channel(channel))
        read[product] = row.balance
        threshold = balance_threshold(product)
        if row.balance is not None and Decimal(row.balance) < threshold:
            log.warning("balance of %s is low: %s (below %s)", product, row.balance, threshold)
    return read


def read_balance(product: str, vendor: str, channel: Channel) -> VendorBalance:
    try:
        amount = balance_of(vendor, channel)
        balance, error = (None if amount is None else str(amount)), None
    except (VendorError, ConfigurationError) as exc:
        balance, error = None, str(exc)
        log.error("could not read the balance of %s: %s", product, exc)
    with session_scope() as session:
        return record_balance(session, product=product, balance=balance, error=error, now=utcnow())
