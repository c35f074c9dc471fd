"""Vendor adapters built from settings, over one HTTP client per worker process.

The client is made on first use in the process that uses it, never before a fork, so prefork
children do not share sockets (CELERY-NOTES §6). Timeouts are explicit: a read timeout is what
turns a send into `unknown`, so it must be a deliberate number.

`sender_for(job)` answers, for each vendor product, how one batch of a job's recipients is sent
and how large a batch may be; `create_veesing_mms` and `balance_of` serve the MMS audit flow and
the balance poll.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

import httpx

from worker.errors import ConfigurationError
from worker.mms import media_from_payload, mms_from_payload
from worker.settings import Settings, get_settings
from worker.store import Channel, Delivery, Job
from worker.vendors.chuangrui import Chuangrui, ChuangruiCredentials
from worker.vendors.fivec import Fivec, FivecCredentials
from worker.vendors.veesing import VeesingCredentials, VeesingSms
from worker.vendors.veesing_mms import VeesingMms
from worker.vendors.veesing_voice import VeesingVoice

_client: httpx.Client | None = None
_client_pid: int | None = None

SIGNATURE_AT_EDGE = re.compile(r"^【([^【】]{2,16})】|【([^【】]{2,16})】$")


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


@dataclass(frozen=True)
class Sender:
    """How one batch of a job's recipients goes to its vendor product.

    `send` returns the vendor's reference for the batch (the key of its reports).
    """

    batch_size: int
    send: Callable[[Sequence[Delivery]], str]


def sender_for(job: Job, vendor: str) -> Sender:
    """How the job's recipients go through `vendor` (the job's own, or a failover's)."""
    settings = get_settings()
    payload = job.payload or {}
    match (vendor, job.channel):
        case ("veesing", Channel.SMS):
            sms = VeesingSms(http_client(), settings.veesing_sms_base, veesing_credentials())

            def send_sms(batch: Sequence[Delivery]) -> str:
                return sms.send_group(_phones(batch), job.content).task_id

            return Sender(settings.batch_size, send_sms)
        case ("chuangrui", Channel.SMS):
            chuangrui = chuangrui_adapter(settings)
            sign, text = split_signature(job.content, settings.chuangrui_sign)

            def send_chuangrui(batch: Sequence[Delivery]) -> str:
                return chuangrui.send(_phones(batch), text, sign).send_id

            return Sender(settings.batch_size, send_chuangrui)
        case ("veesing", Channel.VOICE):
            voice = VeesingVoice(http_client(), settings.veesing_cloud_base, veesing_credentials())

            def call(batch: Sequence[Delivery]) -> str:
                (delivery,) = batch
                template, variables = payload["template_id"], payload["variables"]
                return voice.send(template, delivery.phone, variables, kind=payload["kind"]).task_id

            return Sender(1, call)
        case ("veesing", Channel.MMS):
            mms = VeesingMms(http_client(), settings.veesing_cloud_base, veesing_credentials())
            mms_id = job.content_ref
            if mms_id is None:
                raise ConfigurationError(f"job {job.id} has no approved mmsId yet")

            def send_veesing_mms(batch: Sequence[Delivery]) -> str:
                return mms.send(mms_id, _phones(batch)).task_id

            return Sender(settings.batch_size, send_veesing_mms)
        case ("fivec", Channel.MMS) if "picture" in payload:
            fivec = fivec_adapter(settings)
            picture = media_from_payload(payload["picture"])

            def send_personalised(batch: Sequence[Delivery]) -> str:
                texts = {d.phone: d.text or "" for d in batch}
                return fivec.send_batch(payload["title"], picture, texts)

            return Sender(settings.batch_size, send_personalised)
        case ("fivec", Channel.MMS):
            fivec = fivec_adapter(settings)
            message = mms_from_payload(payload)

            def send_fivec(batch: Sequence[Delivery]) -> str:
                return fivec.send(_phones(batch), message)

            return Sender(settings.batch_size, send_fivec)
    raise ConfigurationError(f"no adapter for {vendor} {job.channel}")


def _phones(batch: Sequence[Delivery]) -> list[str]:
    return [d.phone for d in batch]


def split_signature(content: str, configured: str | None) -> tuple[str, str]:
    """Chuangrui takes the signature as its own field: the configured one, else the content's
    【...】; the content is sent without it."""
    found = SIGNATURE_AT_EDGE.search(content)
    text = content if found is None else (content[: found.start()] + content[found.end() :])
    if configured:
        return configured.strip("【】"), text.strip()
    if found is None:
        raise ConfigurationError("chuangrui needs a signature: HERALD_CHUANGRUI_SIGN or 【...】")
    return found.group(1) or found.group(2), text.strip()


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


def create_veesing_mms(job: Job) -> str:
    """Submit the job's MMS content for the vendor's audit; return its mmsId."""
    settings = get_settings()
    adapter = VeesingMms(http_client(), settings.veesing_cloud_base, veesing_credentials())
    return adapter.create(mms_from_payload(job.payload or {}))


def balance_of(vendor: str, channel: Channel) -> Decimal | None:
    """The account balance of one vendor product, in the vendor's own unit."""
    settings = get_settings()
    match (vendor, channel):
        case ("veesing", Channel.SMS):
            sms = VeesingSms(http_client(), settings.veesing_sms_base, veesing_credentials())
            return _decimal(sms.balance().remain_point)
        case ("veesing", Channel.MMS):
            mms = VeesingMms(http_client(), settings.veesing_cloud_base, veesing_credentials())
            return _decimal(mms.balance().remain_point)
        case ("veesing", Channel.VOICE):
            voice = VeesingVoice(http_client(), settings.veesing_cloud_base, veesing_credentials())
            return _decimal(voice.balance().remain_point)
        case ("chuangrui", Channel.SMS):
            return chuangrui_adapter(settings).balance().balance
        case ("fivec", Channel.MMS):
            return fivec_adapter(settings).balance()
    raise ConfigurationError(f"no adapter for {vendor} {channel}")


def _decimal(value: int | None) -> Decimal | None:
    return None if value is None else Decimal(value)
