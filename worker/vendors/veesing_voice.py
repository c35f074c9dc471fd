"""Veesing (中昱维信) voice notification and voice code: `voiceApi`, its balance, its receipt push.

Read beside the Veesing voice document (docs/vendors.md). One call speaks one approved template to
exactly one phone; `variables` is one string filled into the template: 2 to 8 digits for a
voice code, at most 50 characters for a notice. The replies have the SMS product's JSON shape and
its full message table, so `veesing.parse_reply` reads them.

The balance address differs between the document's table (`/voiceApi/getBalance`) and its
sample (`/voiceApi/group/getBalance`): the table is the default, the constructor takes the other.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from worker.delivery_reports import DeliveryReport, InboundReply
from worker.enums import Channel
from worker.errors import AmbiguousOutcome, FieldProblem, InvalidInput, ReportFormatError
from worker.mms import EMOJI
from worker.vendors import veesing
from worker.vendors.veesing import VENDOR, VeesingProduct

VOICE_PATH = "/voiceApi"
VOICE_BALANCE_PATH = "/voiceApi/getBalance"
"""The address in the document's table; its request sample uses `/voiceApi/group/getBalance`."""

VoiceKind = Literal["code", "notice"]
CODE_VARIABLES = re.compile(r"^[0-9]{2,8}$")
NOTICE_MAX_CHARS = 50
TALK_TIME_MAX_DIGITS = 9
"""Over 31 years of talk is no talk time (and `int()` refuses text over 4,300 digits)."""


def voice_problems(kind: VoiceKind, phone: str, variables: str) -> list[FieldProblem]:
    """The rules of the document's `phone` and `variables` rows that the request breaks."""
    problems: list[FieldProblem] = []
    if not phone.strip():
        problems.append(FieldProblem("phone", "must not be empty"))
    elif "," in phone:
        problems.append(FieldProblem("phone", "exactly one phone number per voice call"))
    if kind == "code":
        if not CODE_VARIABLES.match(variables):
            problems.append(FieldProblem("variables", "a voice code is 2 to 8 digits (0-9)"))
    else:
        if not variables:
            problems.append(FieldProblem("variables", "must not be empty"))
        elif len(variables) > NOTICE_MAX_CHARS:
            problems.append(
                FieldProblem(
                    "variables",
                    f"a voice notice's variables are at most {NOTICE_MAX_CHARS} characters, "
                    f"is {len(variables)}",
                )
            )
        found = EMOJI.search(variables)
        if found is not None:
            problems.append(
                FieldProblem(
                    "variables",
                    f"emoji are not allowed: {found.group()!r} at position {found.start()}",
                )
            )
    return problems


def validate_voice(kind: VoiceKind, phone: str, variables: str) -> None:
    """Raise `InvalidInput` naming every broken rule, before anything is queued or sent."""
    problems = voice_problems(kind, phone, variables)
    if problems:
        raise InvalidInput(problems)


@dataclass(frozen=True)
class VoiceSubmission:
    """The vendor took the call: `task_id` names it in the receipt push."""

    task_id: str
    success_counts: int | None
    remain_point: int | None


class VeesingVoice(VeesingProduct):
    """The voice product at cloud.10658.com.cn (setting HERALD_VEESING_CLOUD_BASE)."""

    default_balance_path = VOICE_BALANCE_PATH

    def send(
        self, template_id: str, phone: str, variables: str, *, kind: VoiceKind
    ) -> VoiceSubmission:
        """Call one phone with a template (`voiceApi`). `kind` says which variables rule applies.

        Raises `InvalidInput` before any call when a rule is broken. A success without a task
        id is `AmbiguousOutcome`: the call was taken but no receipt can be matched to it.
        """
        validate_voice(kind, phone, variables)
        reply = self._post(
            VOICE_PATH, {"templateId": template_id, "phone": phone, "variables": variables}
        )
        if reply.task_id is None:
            raise AmbiguousOutcome(VENDOR, "voice call succeeded without a taskId")
        return VoiceSubmission(reply.task_id, reply.success_counts, reply.remain_point)


def parse_receipt_push(form: Mapping[str, str]) -> DeliveryReport:
    """Parse a receipt push (`mobile`, `taskid`, `status`, `code`, `receivetime`, `talktime`,
    `remark`).

    The first five are the SMS receipt's, read by `veesing.parse_push`: status 1 is delivered,
    `code` is the gateway's code (网关回执码). `talktime` (the seconds the call lasted) and
    `remark` (the vendor's note, 接收成功) are kept in the report's detail as `talk_time_s` and
    `remark`; either may be empty (an unanswered call has no talk time), and a `talktime` that is
    not a whole number of seconds raises `ReportFormatError`.
    """
    parsed = veesing.parse_push(form)
    if isinstance(parsed, InboundReply):
        raise ReportFormatError("a reply push (it has content); voice pushes only receipts")
    detail = {
        "talk_time_s": _talk_time_s(form.get("talktime")),
        "remark": (form.get("remark") or "").strip() or None,
    }
    return replace(parsed, channel=Channel.VOICE, detail=detail)


def _talk_time_s(value: str | None) -> int | None:
    text = (value or "").strip()
    if not text:
        return None
    if not text.isascii() or not text.isdigit() or len(text) > TALK_TIME_MAX_DIGITS:
        raise ReportFormatError(f"talktime is not a whole number of seconds: {text!r}")
    return int(text)
