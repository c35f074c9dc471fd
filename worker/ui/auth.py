"""Who may open the operator page: the API's own keys (worker/api/auth.py), given the way a
browser can give them.

A browser sends no `Authorization: Bearer` header when it navigates, but it does speak HTTP Basic:
`/ui` answers 401 with a Basic challenge, the browser asks for a user name and password, and the
password is the API key (the user name is not checked). A Bearer header is accepted too, for
scripts. Keyless loopback mode is the API's: while no key exists and the API listens on loopback,
the page opens without one. A revoked key is answered 403, as by the API.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBasic, HTTPBasicCredentials

from worker.api.auth import bearer, key_owner, keyless, unauthorized
from worker.settings import get_settings

REALM = "herald operators"
CHALLENGE = f'Basic realm="{REALM}", charset="UTF-8"'
basic = HTTPBasic(auto_error=False, realm=REALM)


def require_operator(
    basic_credentials: Annotated[HTTPBasicCredentials | None, Depends(basic)],
    bearer_credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str | None:
    """The operator's key name (None in keyless loopback mode); 401 with a Basic challenge
    without a known key, 403 with a revoked one."""
    settings = get_settings()
    key = None
    if basic_credentials is not None:
        key = basic_credentials.password
    elif bearer_credentials is not None:
        key = bearer_credentials.credentials
    if not key:
        if keyless(settings):
            return None
        raise unauthorized(
            "the operator page needs an API key: give it as the password (any user name)",
            challenge=CHALLENGE,
        )
    return key_owner(settings, key, challenge=CHALLENGE)
