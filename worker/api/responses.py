"""The error answers the API documents, with their shapes: what each status means and when.

`errors(401, 403, ...)` gives a route's `responses=` for the answers every route means alike;
what only one route answers (a job that does not exist, a job with nothing left to cancel) it
describes itself with `error(...)`. The shapes are the
ones the API answers: `{"detail": "..."}`, and for 422 FastAPI's list of problems, which the
rules checked by `worker.producer` answer too (worker/api/app.py).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field

from worker.api.deps import STORE_RETRY_AFTER_S

INDEXED_PART = re.compile(r"^(\w+)\[(\d+)\]$")


class ErrorDetail(BaseModel):
    """What went wrong, in words."""

    detail: str = Field(description="The reason, for a person to read.")


class FieldProblem(BaseModel):
    """One broken rule."""

    loc: list[str | int] = Field(
        description="Where: `body` then the field's path, e.g. `body, to, 0`."
    )
    msg: str = Field(description="The rule it breaks.")
    type: str = Field(description="The kind of problem (pydantic's error type).")
    input: object | None = Field(
        None, description="The value refused, where a field's own check refused it."
    )
    ctx: dict[str, object] | None = Field(None, description="pydantic's context of the error.")


class ValidationErrors(BaseModel):
    """Every rule the request breaks; nothing was stored."""

    detail: list[FieldProblem] = Field(description="One entry per broken rule.")


def error(description: str, example: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": ErrorDetail,
        "description": description,
        "content": {"application/json": {"example": {"detail": example}}},
        **extra,
    }


STANDARD: dict[int, dict[str, Any]] = {
    401: error(
        "No API key, or one nobody knows (`Authorization: Bearer <key>`); nothing was done. "
        "Without any key configured the API answers requests without one on loopback only.",
        "an API key is required: Authorization: Bearer <key>",
        headers={"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}},
    ),
    403: error("The API key was revoked; nothing was done.", "this API key was revoked"),
    413: error(
        "The body is larger than HERALD_MAX_BODY_BYTES (4 MiB by default); it was not read.",
        "request body too large",
    ),
    422: {
        "model": ValidationErrors,
        "description": "A field breaks a rule; nothing was stored.",
        "content": {
            "application/json": {
                "example": {
                    "detail": [
                        {
                            "loc": ["body", "to", 0],
                            "msg": "Value error, '1380013800' is not a mainland China mobile "
                            "number (11 digits starting 13-19)",
                            "type": "value_error",
                            "input": "1380013800",
                        }
                    ]
                }
            }
        },
    },
    503: error(
        "The job store is unreachable: nothing was done; try again after Retry-After seconds "
        "(with an idempotency key a retried job is never accepted twice).",
        "the job store is unavailable; nothing was done, try again later",
        headers={
            "Retry-After": {
                "description": f"Seconds to wait ({STORE_RETRY_AFTER_S}).",
                "schema": {"type": "integer"},
            }
        },
    ),
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The standard answers for `codes` (401, 403, 413, 422, 503), as a route's `responses=`."""
    return {code: STANDARD[code] for code in codes}


def field_location(field: str) -> list[str | int]:
    """`frames[3].media.type` or `to.0` as FastAPI writes locations: `frames, 3, media, type`."""
    location: list[str | int] = []
    for part in field.split("."):
        indexed = INDEXED_PART.match(part)
        if indexed:
            location += [indexed.group(1), int(indexed.group(2))]
        else:
            location.append(int(part) if part.isdigit() else part)
    return location
