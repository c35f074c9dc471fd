"""A vendor's documented failure codes as herald's error classes, built the same way for all.

Each adapter keeps one table from its vendor's code (or message) to an error class of
worker/errors.py, the class's options bound with `functools.partial` where it has some
(`RateLimited`'s wait, `QuotaExceeded`'s scope); `refusal` builds the error a code stands for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from worker.errors import NotSent, UnknownReply

ErrorClass = Callable[[str, str], NotSent]
"""A `NotSent` class, called with the vendor and its reply (options bound beforehand)."""


def refusal(
    vendor: str, codes: Mapping[str, ErrorClass], code: str, reply: str, *, undocumented: str
) -> NotSent:
    """The error `code` stands for, carrying the vendor's `reply`; `UnknownReply` carrying
    `undocumented` when the table has no such code."""
    error_class = codes.get(code)
    if error_class is None:
        return UnknownReply(vendor, undocumented)
    return error_class(vendor, reply)
