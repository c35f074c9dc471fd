"""Veesing (中昱维信) MMS: `mmsApi/create`, `mmsApi/send`, the balance, and the two pushes.

Read beside the Veesing MMS document (docs/vendors.md). Sending is two calls: `create` stores the
title and frames and answers the MMS id (in the reply's `taskId`); `send` sends that MMS to
phones and answers the batch's task id, which the audit-result and receipt pushes name. The
replies have the SMS product's JSON shape and messages, so `veesing.parse_reply` reads them.

The balance address differs between the document's table (`/mmsApi/getBalance`) and its sample
(`/mmsApi/group/getBalance`): the table is the default, the constructor takes the other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from worker.clock import SHANGHAI
from worker.delivery_reports import AuditResult, DeliveryReport, InboundReply
from worker.enums import Channel
from worker.errors import AmbiguousOutcome, ReportFormatError, UnknownReply
from worker.mms import Mms, encode_for_veesing, validate_for_veesing
from worker.vendors import veesing
from worker.vendors.veesing import VENDOR, VeesingProduct

MMS_CREATE_PATH = "/mmsApi/create"
MMS_SEND_PATH = "/mmsApi/send"
MMS_BALANCE_PATH = "/mmsApi/getBalance"
"""The address in the document's table; its request sample uses `/mmsApi/group/getBalance`."""


@dataclass(frozen=True)
class MmsSubmission:
    """The vendor took the batch: `task_id` names it in the audit-result and receipt pushes."""

    task_id: str
    success_counts: int | None
    remain_point: int | None


class VeesingMms(VeesingProduct):
    """The MMS product at cloud.10658.com.cn (setting HERALD_VEESING_CLOUD_BASE)."""

    default_balance_path = MMS_BALANCE_PATH

    def create(self, mms: Mms) -> str:
        """Store the MMS at the vendor (`mmsApi/create`) and return its MMS id.

        Raises `InvalidInput` before any call when the MMS breaks a rule of the document.
        Creating is not sending: a retried create at worst leaves an unused MMS at the vendor.
        """
        validate_for_veesing(mms)
        reply = self._post(
            MMS_CREATE_PATH, {"title": mms.title, "content": encode_for_veesing(mms)}
        )
        if reply.task_id is None:
            raise UnknownReply(VENDOR, "create succeeded without an MMS id (taskId)")
        return reply.task_id

    def send(
        self, mms_id: str, phones: Sequence[str], *, send_time: datetime | None = None
    ) -> MmsSubmission:
        """Send a created MMS to phones (`mmsApi/send`); `send_time` schedules it at the vendor.

        A success without a task id is `AmbiguousOutcome`: the vendor said it took the batch,
        so it must not be sent again, yet no report can be matched to it.
        """
        fields = {"mmsId": mms_id, "phone": ",".join(phones)}
        if send_time is not None:
            fields["sendTime"] = send_time.astimezone(SHANGHAI).strftime(veesing.SEND_TIME_FORMAT)
        reply = self._post(MMS_SEND_PATH, fields)
        if reply.task_id is None:
            raise AmbiguousOutcome(VENDOR, "send succeeded without a taskId")
        return MmsSubmission(reply.task_id, reply.success_counts, reply.remain_point)


def parse_audit_push(form: Mapping[str, str]) -> AuditResult:
    """Parse an audit-result push (section 3: `taskId`, `returnStatus` 0/1, `message`).

    `returnStatus` 1 approves; a refused batch (0) is never delivered, and `message` says why
    (e.g. 内容不合规). Raises `ReportFormatError` naming the missing or malformed field.
    """
    task_id = _required(form, "taskId")
    status = _required(form, "returnStatus")
    if status not in ("0", "1"):
        raise ReportFormatError(f"returnStatus must be 1 or 0, got {status!r}")
    message = (form.get("message") or "").strip() or None
    return AuditResult(vendor=VENDOR, vendor_ref=task_id, approved=status == "1", reason=message)


def parse_receipt_push(form: Mapping[str, str]) -> DeliveryReport:
    """Parse a receipt push (section 4: `mobile`, `taskid`, `status`, `receivetime`).

    The fields are the SMS receipt's without `code`, so `veesing.parse_push` reads them; the
    receipt carries no carrier code, so it has no vendor status.
    """
    parsed = veesing.parse_push(form)
    if isinstance(parsed, InboundReply):
        raise ReportFormatError("a reply push (it has content); MMS pushes only receipts")
    return replace(parsed, channel=Channel.MMS, vendor_status=None)


def parse_push(form: Mapping[str, str]) -> AuditResult | DeliveryReport:
    """Parse either push, for a callback address that receives both: audits carry
    `returnStatus`, receipts `status`."""
    if "returnStatus" in form:
        return parse_audit_push(form)
    return parse_receipt_push(form)


def _required(form: Mapping[str, str], name: str) -> str:
    value = (form.get(name) or "").strip()
    if not value:
        raise ReportFormatError(f"{name} is missing")
    return value
