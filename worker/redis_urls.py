"""Redis URLs as herald reads them: a plain `redis://` URL, or kombu's `sentinel://` form naming
the sentinels that know the master (HERALD_REDIS_URL, HERALD_LIMITS_REDIS_URL)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urlsplit

SENTINEL_SCHEME = "sentinel"


@dataclass(frozen=True)
class SentinelAddresses:
    """A `sentinel://` Redis URL read: the sentinels to ask for the master, and what to use on
    the master they name (its database, user and password)."""

    sentinels: list[tuple[str, int]]
    db: int
    username: str | None
    password: str | None = dataclasses.field(repr=False)


def is_sentinel_url(url: str) -> bool:
    return url.startswith(f"{SENTINEL_SCHEME}://")


def sentinel_addresses(url: str) -> SentinelAddresses:
    """Read kombu's Sentinel URL: `sentinel://[[user]:password@]host:port[/db]` once per
    sentinel, joined by `;`.

    Celery reads the database, user and password from the first address only, so a later one
    that names others is refused rather than silently ignored. Raises ValueError (never
    showing the URL, which may hold a password).
    """
    sentinels: list[tuple[str, int]] = []
    first: SplitResult | None = None
    for position, part in enumerate(url.split(";"), 1):
        parts = urlsplit(part.strip())
        try:
            port = parts.port or 26379
        except ValueError:
            raise ValueError(f"sentinel address {position} has no valid port") from None
        if parts.scheme != SENTINEL_SCHEME or not parts.hostname:
            raise ValueError(f"sentinel address {position} is not sentinel://host:port")
        if parts.query or parts.fragment:
            raise ValueError(f"sentinel address {position} has options; none are read")
        if first is None:
            first = parts
        elif parts.path.strip("/") not in ("", first.path.strip("/") or "0") or (
            parts.password is not None and parts.password != first.password
        ):
            raise ValueError(
                f"sentinel address {position} names another database or password than the "
                "first: Celery reads them from the first address only"
            )
        sentinels.append((parts.hostname, port))
    assert first is not None
    database = first.path.strip("/") or "0"
    if not database.isdigit():
        raise ValueError("the database of a sentinel URL is a number (/0)")
    return SentinelAddresses(
        sentinels,
        int(database),
        unquote(first.username) if first.username else None,
        unquote(first.password) if first.password is not None else None,
    )
