"""The HTTP API as one FastAPI application: the producers', operators' and vendors' routes,
their documentation (`/docs`, `/redoc`: worker/api/docs.py) and the operator page (`/ui`:
worker/ui/)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa
from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from worker import log_format, log_redaction
from worker.api import auth, callbacks, docs, messages, metrics, operators, producers
from worker.api.body_limit import BodySizeLimit
from worker.api.deps import STORE_RETRY_AFTER_S
from worker.api.responses import field_location
from worker.errors import InvalidInput, StoreUnavailable
from worker.store import migrate
from worker.store.db import OUTAGE_ERRORS, is_store_outage
from worker.ui import install as install_ui

SERVER_LOGGERS = ("uvicorn", "uvicorn.access", "uvicorn.error")


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    """Redact the logs, bring the store up to date, and refuse to listen beyond loopback
    without an API key (worker/api/auth.py)."""
    if not logging.getLogger().handlers:  # uvicorn sets up only its own loggers
        logging.basicConfig(format="%(levelname)s:  %(name)s: %(message)s")
    log_redaction.install(*SERVER_LOGGERS)
    log_format.install(*SERVER_LOGGERS)
    await run_in_threadpool(migrate.upgrade)
    await run_in_threadpool(auth.check_can_start)
    yield


def create_api() -> FastAPI:
    # uvicorn imports the application before it logs its first line: JSON from that line on.
    log_format.install(*SERVER_LOGGERS)
    api = FastAPI(
        lifespan=lifespan,
        title="herald",
        summary="Accepts SMS, MMS and voice jobs durably and follows each recipient to its "
        "delivery report.",
        description=docs.DESCRIPTION,
        version="0.1.0",
        openapi_tags=docs.TAGS,
        docs_url=None,
        redoc_url=None,
    )
    docs.serve_docs(api)
    api.exception_handler(InvalidInput)(invalid_input)
    api.add_middleware(BodySizeLimit)
    for outage in (StoreUnavailable, *OUTAGE_ERRORS, sa.exc.DBAPIError):
        api.exception_handler(outage)(store_unreachable)
    api.exception_handler(RequestValidationError)(request_validation_error)
    api.include_router(producers.router)
    api.include_router(messages.router)
    api.include_router(operators.router)
    api.include_router(operators.health_router)
    api.include_router(metrics.router)
    api.include_router(callbacks.router)
    install_ui(api)
    return api


def invalid_input(_request: Request, exc: InvalidInput) -> JSONResponse:
    """The rules `worker.producer` checks answer 422 in FastAPI's own shape, like the models'."""
    detail = [
        {"loc": ["body", *field_location(p.field)], "msg": p.rule, "type": "value_error"}
        for p in exc.problems
    ]
    return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


def store_unreachable(_request: Request, exc: Exception) -> JSONResponse:
    """The store is down or unreachable: 503 with Retry-After, never 500, and a body that names
    the problem but neither the store's address nor the driver's words. A request refused this
    way stored nothing; a producer that retries it is safe with an idempotency key, which also
    covers the rare commit whose answer was lost with the connection."""
    if not is_store_outage(exc):
        raise exc  # another database error: a bug, answered 500 and logged by the server
    return unavailable_response()


def unavailable_response() -> JSONResponse:
    return JSONResponse(
        {"detail": "the job store is unavailable; nothing was done, try again later"},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(STORE_RETRY_AFTER_S)},
    )


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


api = create_api()
