"""The operators' housekeeping commands: `herald db` (the store's schema) and `herald keys`
(the HTTP API's keys, stored hashed). Registered on the `herald` group by worker/cli.py."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

import click

from worker.display import display_time
from worker.errors import ApiKeyNameTaken
from worker.settings import API_KEY_NAME, get_settings
from worker.store import api_keys, create_api_key, migrate, revoke_api_key, session_scope, utcnow


@click.group()
def db() -> None:
    """The store's schema (migrations): HERALD_DATABASE_URL."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Migrate the store to the newest schema; a store already there is left as it is."""
    from worker.store import migrate

    migrate.upgrade()
    click.echo(f"store at revision {migrate.current()} (head)")


@db.command("current")
def db_current() -> None:
    """Print the store's schema revision ("none" when it was never migrated)."""
    from worker.store import migrate

    click.echo(migrate.current() or "none")


@click.group()
def keys() -> None:
    """API keys for the HTTP API (`Authorization: Bearer <key>`); only their hashes are stored."""


@keys.command("create")
@click.argument("name")
def keys_create(name: str) -> None:
    """Make a key named NAME and print it, once: it cannot be shown again."""
    if not API_KEY_NAME.fullmatch(name):
        raise click.BadParameter("letters, digits, '.', '_' or '-', at most 64", param_hint="NAME")
    if name in get_settings().configured_api_keys():
        click.echo(f"error: HERALD_API_KEYS already names a key {name!r}", err=True)
        sys.exit(1)
    migrate.upgrade()
    try:
        with session_scope() as session:
            key = create_api_key(session, name=name, now=utcnow())
    except ApiKeyNameTaken as exc:
        click.echo(f"error: {exc} (names are never reused)", err=True)
        sys.exit(1)
    click.echo(key)
    click.echo(f"the key {name!r} is shown only now: keep it", err=True)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
def keys_list(as_json: bool) -> None:
    """Print every key's name, where it comes from, and whether it was revoked (never a key)."""
    migrate.upgrade()
    rows: list[dict[str, Any]] = [
        {"name": name, "source": "HERALD_API_KEYS", "created_at": None, "revoked_at": None}
        for name in get_settings().configured_api_keys()
    ]
    with session_scope() as session:
        rows += [
            {
                "name": k.name,
                "source": "store",
                "created_at": k.created_at,
                "revoked_at": k.revoked_at,
            }
            for k in api_keys(session)
        ]
    if as_json:
        click.echo(json.dumps(rows, default=datetime.isoformat))
        return
    for row in rows:
        state = f"revoked {display_time(row['revoked_at'])}" if row["revoked_at"] else "active"
        since = f"  created {display_time(row['created_at'])}" if row["created_at"] else ""
        click.echo(f"{row['name']:<24} {row['source']:<16} {state}{since}")
    if not rows:
        click.echo("no API key: the API accepts requests without one, on loopback only")


@keys.command("revoke")
@click.argument("name")
def keys_revoke(name: str) -> None:
    """Revoke the stored key NAME: requests with it are answered 403 from now on."""
    migrate.upgrade()
    with session_scope() as session:
        revoked = revoke_api_key(session, name=name, now=utcnow())
    if revoked:
        click.echo(f"revoked {name}")
        return
    if name in get_settings().configured_api_keys():
        click.echo(f"error: {name!r} comes from HERALD_API_KEYS: remove it there", err=True)
    else:
        click.echo(f"error: no active stored key named {name!r}", err=True)
    sys.exit(1)
