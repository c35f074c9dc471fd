"""What a webhook address must be: an absolute http(s) URL with a host, of bounded length.

Shared by the request models (`callback_url`) and the settings (`HERALD_WEBHOOK_URL`), so an
address refused in one is refused in the other.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import HttpUrl, TypeAdapter, ValidationError

CALLBACK_URL_MAX_CHARS = 2048
"""The longest address a job may carry (a common limit of browsers and proxies)."""

_HTTP_URL = TypeAdapter(HttpUrl)


def check_callback_url(value: str) -> str:
    """`value` itself when it is an http or https URL with a host; ValueError otherwise."""
    if len(value) > CALLBACK_URL_MAX_CHARS:
        raise ValueError(f"must be at most {CALLBACK_URL_MAX_CHARS} characters")
    try:
        _HTTP_URL.validate_python(value)
    except ValidationError:
        raise ValueError("must be an http:// or https:// URL with a host") from None
    return value


def url_host(url: str) -> str:
    """The host of a webhook address: what logs name it by. Its path and query may hold a
    receiver's own token, so they are never logged."""
    return urlsplit(url).hostname or "?"
