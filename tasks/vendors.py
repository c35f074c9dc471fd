"""Vendor adapters built from settings, over one HTTP client per worker process.

The client is made on first use in the process that uses it, never before a fork, so prefork
children do not share sockets (CELERY-NOTES §6). Timeouts are explicit: a read timeout is what
turns a send into `unknown`, so it must be a deliberate number.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Protocol

import httpx

from worker.errors import ConfigurationError
from worker.settings import get_settings
from worker.vendors.veesing import VeesingCredentials, VeesingSms

_client: httpx.Client | None = None
_client_pid: int | None = None


def http_client() -> httpx.Client:
    global _client, _client_pid
    if _client is None or _client_pid != os.getpid():
        settings = get_settings()
        timeout = httpx.Timeout(
            connect=settings.http_connect_timeout_s,
            read=settings.http_read_timeout_s,
            write=settings.http_read_timeout_s,
            pool=settings.http_connect_timeout_s,
        )
        _client = httpx.Client(timeout=timeout, limits=httpx.Limits(max_connections=20))
        _client_pid = os.getpid()
    return _client


class SmsSender(Protocol):
    """Send one content to a batch of phones; return the vendor's reference for the batch."""

    def __call__(self, phones: Sequence[str], content: str) -> str: ...


def sms_sender(vendor: str) -> SmsSender:
    settings = get_settings()
    if vendor == "veesing":
        if not (settings.veesing_app_id and settings.veesing_app_key):
            raise ConfigurationError(
                "veesing needs HERALD_VEESING_APP_ID and HERALD_VEESING_APP_KEY"
            )
        adapter = VeesingSms(
            http_client(),
            settings.veesing_sms_base,
            VeesingCredentials(
                settings.veesing_app_id, settings.veesing_app_key.get_secret_value()
            ),
        )

        def send(phones: Sequence[str], content: str) -> str:
            return adapter.send_group(phones, content).task_id

        return send
    raise ConfigurationError(f"no SMS adapter for vendor {vendor!r}")
