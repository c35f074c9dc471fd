"""Vendor adapters built from settings, over one HTTP client per process.

The client is made on first use in the process that uses it, never before a fork, so prefork
children do not share sockets (docs/design.md). Timeouts are explicit: a read timeout is what
turns a send into `unknown`, so it must be a deliberate number.
"""

from __future__ import annotations

import os

import httpx

from worker.errors import ConfigurationError
from worker.settings import Settings, get_settings
from worker.vendors.chuangrui import Chuangrui, ChuangruiCredentials
from worker.vendors.fivec import Fivec, FivecCredentials
from worker.vendors.veesing import VeesingCredentials

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


def veesing_credentials() -> VeesingCredentials:
    settings = get_settings()
    if not (settings.veesing_app_id and settings.veesing_app_key):
        raise ConfigurationError("veesing needs HERALD_VEESING_APP_ID and HERALD_VEESING_APP_KEY")
    return VeesingCredentials(settings.veesing_app_id, settings.veesing_app_key.get_secret_value())


def chuangrui_adapter(settings: Settings) -> Chuangrui:
    if not (settings.chuangrui_url and settings.chuangrui_name and settings.chuangrui_pwd):
        raise ConfigurationError(
            "chuangrui needs HERALD_CHUANGRUI_URL, HERALD_CHUANGRUI_NAME and HERALD_CHUANGRUI_PWD"
        )
    credentials = ChuangruiCredentials(
        settings.chuangrui_name, settings.chuangrui_pwd.get_secret_value()
    )
    return Chuangrui(http_client(), settings.chuangrui_url, credentials)


def fivec_adapter(settings: Settings) -> Fivec:
    if not (settings.fivec_apikey and settings.fivec_username and settings.fivec_password):
        raise ConfigurationError(
            "fivec needs HERALD_FIVEC_APIKEY, HERALD_FIVEC_USERNAME and HERALD_FIVEC_PASSWORD"
        )
    credentials = FivecCredentials(
        settings.fivec_username,
        settings.fivec_password.get_secret_value(),
        settings.fivec_apikey.get_secret_value(),
    )
    return Fivec(http_client(), settings.fivec_base, credentials)
