"""Every error herald raises on purpose, in one tree.

    HeraldError
    ├── InvalidInput              a producer's request breaks a rule; nothing was stored or queued
    ├── JobNotFound               no job has that id
    ├── JobNotCancellable         the job already reached the vendor
    ├── InvalidCursor             a page cursor herald did not write, or one of another list
    ├── CallbackRejected          a vendor push failed authentication
    ├── ReportFormatError         a vendor report or push could not be parsed
    ├── ConfigurationError        a vendor or product is used without its settings
    ├── ApiKeyNameTaken           `herald keys create` with a name a key already has
    ├── StoreUnavailable          the job store cannot be reached now: try again shortly
    ├── SpoolError                a record could not be written to or read from the local spool
    └── VendorError               a vendor call did not end in a submission
        ├── NotSent               the vendor provably did not take the message: safe to send again
        │   ├── TransientError        a passing fault (connect error, 429/503, explicit retry reply)
        │   │   └── UnknownReply      a reply readable in the vendor's format that no document
        │   │                         lists: retried on a small budget
        │   ├── RateLimited           too soon for this number: defer, do not count as an error
        │   ├── QuotaExceeded         a daily cap (per number or per account) is used up
        │   ├── RecipientRejected     this number can never receive it
        │   ├── MessageRejected       the content or template is refused
        │   └── VendorBlocked         credentials, balance, locked, IP: stop using the vendor
        └── AmbiguousOutcome      the request may have been taken (read timeout, 5xx, reset):
            │                     never resent by default, settled by reports
            └── UnreadableReply   an answer to a written request that cannot be read at all
                                  (HTML, cut-off JSON, wrong encoding, empty, wrong shape)

The `VendorError` leaves are the classes of docs/design.md, promise 4. Each vendor module maps every
documented reply to one of them; tasks decide what to do from the class alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


class HeraldError(Exception):
    """Root of every error herald raises on purpose."""


@dataclass(frozen=True)
class FieldProblem:
    """One broken rule: which field (dotted path) and what the rule is."""

    field: str
    rule: str


class InvalidInput(HeraldError, ValueError):
    """A producer's request breaks one or more rules. Nothing was stored or queued."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.field}: {p.rule}" for p in problems))


class JobNotFound(HeraldError, LookupError):
    """No job has that id."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"no job {job_id}")


class JobNotCancellable(HeraldError):
    """Every recipient of the job has already been handed to the vendor, or is final."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__("no recipient is left to cancel")


class InvalidCursor(HeraldError, ValueError):
    """A page cursor that herald did not write, or one written for another list."""


class CallbackRejected(HeraldError):
    """A vendor push failed authentication (wrong token, bad signature, stale timestamp)."""


class ReportFormatError(HeraldError, ValueError):
    """A vendor report or push does not follow its documented format."""


class ConfigurationError(HeraldError):
    """A vendor or product is used without the settings it needs."""


class ApiKeyNameTaken(HeraldError, ValueError):
    """A stored API key (revoked or not) already has that name: names are never reused."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"an API key named {name!r} exists already")


class StoreUnavailable(HeraldError):
    """The job store cannot be reached (connection refused or lost, no pooled connection free).

    Nothing was decided: the caller tries again shortly (the API answers 503 with Retry-After,
    a task retries). The message names the driver's error class only, never the store's URL.
    """


class PushesRaced(HeraldError):
    """Another applier marked some pushes of a batch applied while this one applied them: the
    batch is rolled back (they must not be applied twice)."""


class SpoolError(HeraldError):
    """A record could not be written to, or read from, the local spool folder (worker/spool.py)."""


class VendorError(HeraldError):
    """A vendor call did not end in a submission.

    `reply` is the vendor's own words (or the transport failure), kept verbatim for operators;
    it never contains a credential because adapters build it from the reply, not the request.
    """

    def __init__(self, vendor: str, reply: str) -> None:
        self.vendor = vendor
        self.reply = reply
        super().__init__(f"{vendor}: {reply}")


class NotSent(VendorError):
    """The vendor provably did not take the message, so sending it again cannot duplicate it."""


class TransientError(NotSent):
    """A passing fault: retry with exponential backoff and jitter.

    `retry_after_s` is the vendor's own hint (HTTP Retry-After), when it gave one.
    """

    def __init__(self, vendor: str, reply: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(vendor, reply)
        self.retry_after_s = retry_after_s


class UnknownReply(TransientError):
    """A reply that reads as the vendor's format but says something no document lists (an
    unlisted code or message): the vendor answered, so it refused; logged verbatim, retried on a
    small budget."""


class RateLimited(NotSent):
    """Too soon for this number (the one-per-minute rule): defer, without counting an error."""

    def __init__(self, vendor: str, reply: str, *, retry_after_s: float) -> None:
        super().__init__(vendor, reply)
        self.retry_after_s = retry_after_s


class QuotaExceeded(NotSent):
    """A daily cap is used up, for one number or for the whole account."""

    def __init__(self, vendor: str, reply: str, *, scope: Literal["number", "account"]) -> None:
        super().__init__(vendor, reply)
        self.scope = scope


class RecipientRejected(NotSent):
    """This number can never receive the message (malformed, blacklisted)."""


class MessageRejected(NotSent):
    """The content or template is refused; sending it again would fail the same way."""


class VendorBlocked(NotSent):
    """The account cannot send at all (credentials, balance, locked, IP): stop, alert, fail over."""


class AmbiguousOutcome(VendorError):
    """The request may have reached the vendor: mark `unknown`, never resend by default."""


class UnreadableReply(AmbiguousOutcome):
    """The vendor's answer to a request it received cannot be read in its format at all: an HTML
    page, cut-off or invalid JSON, bytes in another encoding, an empty body, a line of the wrong
    shape. Whatever it says, the vendor may have taken the message, so it is never sent again by
    default (docs/design.md, promise 2); the body is kept, truncated, for the operator."""
