"""The HTTP API as one FastAPI application: the producers', operators' and vendors' routes."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from worker.api import callbacks, operators, producers
from worker.errors import InvalidInput
from worker.store import migrate

INDEXED_PART = re.compile(r"^(\w+)\[(\d+)\]$")


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    await run_in_threadpool(migrate.upgrade)
    yield


def create_api() -> FastAPI:
    api = FastAPI(
        lifespan=lifespan,
        title="herald",
        summary="Accepts SMS jobs durably and follows each recipient to its delivery report.",
        version="0.1.0",
    )
    api.exception_handler(InvalidInput)(invalid_input)
    api.exception_handler(RequestValidationError)(request_validation_error)
    api.include_router(producers.router)
    api.include_router(operators.router)
    api.include_router(callbacks.router)
    return api


def invalid_input(_request: Request, exc: InvalidInput) -> JSONResponse:
    """The rules `worker.producer` checks answer 422 in FastAPI's own shape, like the models'."""
    detail = [
        {"loc": ["body", *field_location(p.field)], "msg": p.rule, "type": "value_error"}
        for p in exc.problems
    ]
    return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


def request_validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's own 422, except that the input it quotes back may be bytes that are not UTF-8
    (a body sent as text/plain) or text with a lone surrogate (JSON's `"\\ud800"`), which
    FastAPI's handler could not write and answered 500: both are quoted with what cannot be
    written replaced."""
    detail = jsonable_encoder(exc.errors(), custom_encoder={bytes: quotable, str: quotable})
    return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


def quotable(value: str | bytes) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value.encode("utf-8", errors="replace").decode("utf-8")


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


api = create_api()
