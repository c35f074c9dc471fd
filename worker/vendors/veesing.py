"""Veesing (中昱维信) SMS group send: `smsApi/group`, its balance, and its pushes.

Read beside the Veesing SMS document (docs/vendors.md). Every reply is JSON
`{"returnStatus", "message", "remainPoint", "taskId", "successCounts"}`; success is
`returnStatus == "1 "` (with a trailing space in the document, so it is compared stripped) and a
failure is `"0"` whose Chinese `message` carries the reason. `VEESING_MESSAGES` maps every
documented message to an error class; the MMS and voice products of the same vendor answer in the
same shape and reuse `parse_reply`.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

import httpx

from worker.clock import SHANGHAI, parse_vendor_time
from worker.delivery_reports import DeliveryReport, InboundReply, status_from_flag
from worker.enums import Channel
from worker.errors import (
    AmbiguousOutcome,
    MessageRejected,
    QuotaExceeded,
    RateLimited,
    RecipientRejected,
    ReportFormatError,
    TransientError,
    UnknownReply,
    UnreadableReply,
    VendorBlocked,
)
from worker.vendors.codes import ErrorClass, refusal
from worker.vendors.transport import exchange

VENDOR = "veesing"
SMS_GROUP_PATH = "/smsApi/group"
SMS_BALANCE_PATH = "/smsApi/group/getBalance"
SEND_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
ONE_MINUTE_S = 60.0


VEESING_MESSAGES: Mapping[str, ErrorClass] = {
    "账号或密码错误": VendorBlocked,
    "缺少参数": MessageRejected,
    "参数错误": MessageRejected,
    "模板不存在或者未通过": MessageRejected,
    "模板id格式不正确": MessageRejected,
    "您的账户已被锁定,请联系您的专属客服": VendorBlocked,
    "余额不足": VendorBlocked,
    "手机号码格式不正确": RecipientRejected,
    "该号码今日发送次数已达上限": partial(QuotaExceeded, scope="number"),
    "相同手机号码一分钟之内只可发送一次": partial(RateLimited, retry_after_s=ONE_MINUTE_S),
    "当日发送量已超出最大发送限制": partial(QuotaExceeded, scope="account"),
    "未知原因,请联系客服": TransientError,
    "IP受限": VendorBlocked,
}
"""Every failure message in the SMS document (status code 0) and the class it raises.

Keys are NFKC-normalised (full-width commas become ASCII) and stripped, as `normalise_message`
does to the vendor's reply before the lookup.
"""


def normalise_message(message: str) -> str:
    return unicodedata.normalize("NFKC", message).strip()


@dataclass(frozen=True)
class VeesingReply:
    """A successful reply. Fields the product leaves null are None."""

    message: str
    task_id: str | None
    remain_point: int | None
    success_counts: int | None


@dataclass(frozen=True)
class VeesingCredentials:
    app_id: str
    app_key: str = field(repr=False)

    def form(self) -> dict[str, str]:
        return {"appId": self.app_id, "appKey": self.app_key}


def parse_reply(body: bytes) -> VeesingReply:
    """Parse a Veesing JSON reply; raise the mapped `NotSent` class for `returnStatus` "0".

    A body that is not the documented JSON object at all (HTML, cut-off JSON, not UTF-8, empty,
    no `returnStatus`) is `UnreadableReply`: the vendor may have taken the request. A readable
    reply whose status or message no document lists is `UnknownReply`. Either keeps the body
    verbatim (truncated) for the operator.
    """
    payload = _json_object(body)
    status = str(payload["returnStatus"]).strip()
    message = normalise_message(str(payload.get("message") or ""))
    if status == "1":
        return VeesingReply(
            message=message,
            task_id=_optional_str(payload.get("taskId")),
            remain_point=_optional_int(payload.get("remainPoint")),
            success_counts=_optional_int(payload.get("successCounts")),
        )
    if status == "0":
        raise refusal(
            VENDOR, VEESING_MESSAGES, message, message, undocumented=f"returnStatus 0: {message!r}"
        )
    raise UnknownReply(VENDOR, f"returnStatus {status!r}: {message!r}")


def _json_object(body: bytes) -> dict[str, object]:
    """The reply as a JSON object with a `returnStatus`, or `UnreadableReply`."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UnreadableReply(VENDOR, f"not UTF-8: {body[:200]!r}") from None
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, a number over 4,300 digits, deep nesting
        raise UnreadableReply(VENDOR, f"not JSON: {text[:200]!r}") from None
    if not isinstance(payload, dict) or "returnStatus" not in payload:
        raise UnreadableReply(VENDOR, f"no returnStatus: {text[:200]!r}")
    return payload


def _optional_str(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _optional_int(value: object) -> int | None:
    """A count of a success reply; one that is not a number makes the reply unreadable (the
    vendor said it took the request, so it must not be sent again)."""
    text = _optional_str(value)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise UnreadableReply(VENDOR, f"not a whole number: {text[:50]!r}") from None


@dataclass(frozen=True)
class GroupSubmission:
    """The vendor took the batch: `task_id` names it in every receipt and reply push."""

    task_id: str
    success_counts: int | None
    remain_point: int | None


@dataclass(frozen=True)
class Balance:
    remain_point: int | None


class VeesingProduct:
    """What the Veesing products share: one account's credentials in every form, the JSON reply
    of `parse_reply`, and a balance query whose address each product's document gives (the MMS
    and voice documents' tables and samples differ, so it is a constructor argument)."""

    default_balance_path = SMS_BALANCE_PATH

    def __init__(
        self,
        client: httpx.Client,
        base_url: str,
        credentials: VeesingCredentials,
        *,
        balance_path: str | None = None,
    ) -> None:
        self._client = client
        self._base_url = base_url.rstrip("/")
        self._credentials = credentials
        self._balance_path = balance_path or self.default_balance_path

    def balance(self) -> Balance:
        """What is left on the product's account (`remainPoint`)."""
        return Balance(self._post(self._balance_path, {}).remain_point)

    def _post(self, path: str, fields: dict[str, str]) -> VeesingReply:
        """POST the fields with the credentials; the parsed reply, or its mapped error."""
        form = self._credentials.form() | fields
        response = exchange(self._client, VENDOR, "POST", self._base_url + path, data=form)
        return parse_reply(response.content)


class VeesingSms(VeesingProduct):
    """The SMS product at vip.veesing.com (setting HERALD_VEESING_SMS_BASE)."""

    def send_group(
        self, phones: Sequence[str], content: str, *, send_time: datetime | None = None
    ) -> GroupSubmission:
        """Send one content to many phones in one call (`smsApi/group`)."""
        fields = {"phone": ",".join(phones), "content": content}
        if send_time is not None:
            fields["sendTime"] = send_time.astimezone(SHANGHAI).strftime(SEND_TIME_FORMAT)
        reply = self._post(SMS_GROUP_PATH, fields)
        if reply.task_id is None:
            # The vendor said it took the batch: sending again could duplicate it.
            raise AmbiguousOutcome(VENDOR, "success without taskId")
        return GroupSubmission(reply.task_id, reply.success_counts, reply.remain_point)


def parse_push(form: Mapping[str, str]) -> DeliveryReport | InboundReply:
    """Parse one receipt or reply push (section 2 of the document): reply pushes carry `content`.

    A receipt's status 1 is delivered, 0 undelivered; its `code` (the carrier's) is kept as the
    vendor status. Raises `ReportFormatError` naming the missing or malformed field.
    """
    mobile = _required(form, "mobile")
    receive_time = parse_vendor_time(form.get("receivetime"), field="receivetime")
    if "content" in form:
        return InboundReply(
            vendor=VENDOR,
            phone=mobile,
            content=form["content"],
            vendor_ref=_optional_str(form.get("taskid")),
            received_at=receive_time,
        )
    status = _required(form, "status")
    if status not in ("0", "1"):
        raise ReportFormatError(f"status must be 1 or 0, got {status!r}")
    return DeliveryReport(
        vendor=VENDOR,
        channel=Channel.SMS,
        vendor_ref=_required(form, "taskid"),
        phone=mobile,
        status=status_from_flag(status == "1"),
        vendor_status=_optional_str(form.get("code")),
        reported_at=receive_time,
    )


def _required(form: Mapping[str, str], name: str) -> str:
    value = (form.get(name) or "").strip()
    if not value:
        raise ReportFormatError(f"{name} is missing")
    return value
