"""Who may use the producers' and operators' routes: API keys, as `Authorization: Bearer <key>`.

Keys come from HERALD_API_KEYS (`name=key,...`) and from the store (`herald keys create`, kept as
hashes). Without a key, or with one nobody knows, a request is answered 401; with a revoked
key, 403. Either way the route does not run, so nothing is stored.

While no key exists at all, the API accepts requests without one, but only when it listens on
loopback (HERALD_API_HOST), so `herald up` needs no set-up; it says so when it starts. On any
other address it refuses to start without a key. The vendors' callbacks authenticate pushes
their own way (worker/api/callbacks.py) and `/healthz` is open.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from worker.errors import ConfigurationError
from worker.settings import Settings, get_settings
from worker.store import any_active_api_key, find_api_key, read_scope

log = logging.getLogger(__name__)

bearer = HTTPBearer(
    auto_error=False,
    description="An API key: HERALD_API_KEYS, or one `herald keys create NAME` printed.",
)


def is_loopback(host: str) -> bool:
    """Whether listening on `host` reaches this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def keys_exist(settings: Settings) -> bool:
    if settings.configured_api_keys():
        return True
    with read_scope() as session:
        return any_active_api_key(session)


def check_can_start(settings: Settings | None = None) -> None:
    """Called when the API starts. Raises `ConfigurationError` when it would listen beyond
    loopback with no key at all; warns when it runs without keys on loopback."""
    settings = settings or get_settings()
    if keys_exist(settings):
        return
    if not is_loopback(settings.api_host):
        raise ConfigurationError(
            f"the API listens on {settings.api_host} (HERALD_API_HOST) but no API key exists: "
            "set HERALD_API_KEYS=name=key or run `herald keys create NAME`, or listen on "
            "127.0.0.1"
        )
    log.warning(
        "no API key exists: the API accepts requests without one because it listens on %s "
        "(loopback) only; set HERALD_API_KEYS or run `herald keys create NAME` to require keys",
        settings.api_host,
    )


def require_api_key(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str | None:
    """The caller's key name (None in keyless loopback mode); 401 or 403 otherwise."""
    settings = get_settings()
    if credentials is None:
        if keyless(settings):
            return None
        raise unauthorized("an API key is required: Authorization: Bearer <key>")
    return key_owner(settings, credentials.credentials)


def key_owner(settings: Settings, key: str, *, challenge: str = "Bearer") -> str:
    """The name of the API key `key`; 401 (with `challenge` as WWW-Authenticate) when nobody
    knows it, 403 when it was revoked."""
    name = configured_key_name(settings, key)
    if name is not None:
        return name
    with read_scope() as session:
        stored = find_api_key(session, key=key)
        if stored is None:
            raise unauthorized("unknown API key", challenge=challenge)
        if stored.revoked_at is not None:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "this API key was revoked")
        return stored.name


def configured_key_name(settings: Settings, key: str) -> str | None:
    """The HERALD_API_KEYS name of `key`; every configured key is compared, in constant time."""
    found = None
    given = key.encode("utf-8")
    for name, secret in settings.configured_api_keys().items():
        if hmac.compare_digest(given, secret.get_secret_value().encode("utf-8")):
            found = name
    return found


def unauthorized(detail: str, *, challenge: str = "Bearer") -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": challenge}
    )


def keyless(settings: Settings) -> bool:
    """Whether requests without a key are let in: no key exists and the API is on loopback."""
    return not keys_exist(settings) and is_loopback(settings.api_host)


ApiKeyName = Annotated[str | None, Depends(require_api_key)]
"""A route's caller: the name of its API key (None in keyless loopback mode)."""
