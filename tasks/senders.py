"""Helpers for the tasks: how a job's recipients reach each vendor product, over the adapters
of `worker.clients`.

`sender_for(job, vendor)` answers, for each vendor product, how one batch of a job's recipients
is sent and how large a batch may be; `create_veesing_mms` and `balance_of` serve the MMS audit
flow and the balance poll.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from worker.clients import chuangrui_adapter, fivec_adapter, http_client, veesing_credentials
from worker.enums import Channel
from worker.errors import ConfigurationError
from worker.mms import media_from_payload, mms_from_payload
from worker.settings import get_settings
from worker.store import Delivery, Job
from worker.vendors.veesing import VeesingSms
from worker.vendors.veesing_mms import VeesingMms
from worker.vendors.veesing_voice import VeesingVoice

SIGNATURE_AT_EDGE = re.compile(r"^【([^【】]{2,16})】|【([^【】]{2,16})】$")


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
                return sms.send_group(_phones(batch), batch_text(job, batch)).task_id

            return Sender(settings.batch_size, send_sms)
        case ("chuangrui", Channel.SMS):
            chuangrui = chuangrui_adapter(settings)

            def send_chuangrui(batch: Sequence[Delivery]) -> str:
                sign, text = split_signature(batch_text(job, batch), settings.chuangrui_sign)
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


def batch_text(job: Job, batch: Sequence[Delivery]) -> str:
    """The SMS text of a batch: its recipients' own rendered text (a personalised job; every
    recipient of a batch has the same one, `tasks.batching`), else the job's content."""
    return batch[0].text or job.content


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
