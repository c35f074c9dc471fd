"""The sandbox's own endpoints under /_sandbox: logs, faults, account state, reset, MO pushes."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field
from starlette.responses import Response

from worker.sandbox.pushes import PushSender
from worker.sandbox.state import ACCOUNTS, Faults, SandboxState

ACCOUNT_GROUPS = {"veesing": ("veesing_sms", "veesing_mms", "veesing_voice")}


class StateUpdate(BaseModel):
    """Changes to vendor accounts; `account` is one of ACCOUNTS, "veesing" (its three
    products) or absent (every account). Lists replace the current ones."""

    account: str | None = None
    status: Literal["active", "locked", "cancelled", "disabled"] | None = None
    ip_blocked: bool | None = None
    balance: int | None = None
    undeliverable: list[str] | None = None
    blacklist: list[str] | None = None
    clock_offset_s: float | None = None


class MoRequest(BaseModel):
    """A user's reply to push: Veesing SMS reply push, or a Chuangrui MO push."""

    vendor: Literal["veesing", "chuangrui"]
    phone: str
    content: str
    ref: str | None = Field(None, description="Veesing taskid to quote (default: last send).")
    extno: str | None = Field(None, description="Chuangrui custom extension (default: last).")
    more: list[MoRequest] = Field(
        default_factory=list, description="Chuangrui: further MOs in the same push (#@@#)."
    )


MoSender = Callable[[MoRequest], dict[str, str]]


def control_router(
    state: SandboxState, pushes: PushSender, mo_senders: Mapping[str, MoSender]
) -> APIRouter:
    router = APIRouter(prefix="/_sandbox")

    @router.get("/log")
    async def send_log() -> Response:
        return _json(list(state.sends.entries))

    @router.get("/log/summary")
    async def send_summary(limit: int = 100) -> dict[str, Any]:
        """Sends since the last reset, counted per number (not limited to the in-memory log):
        total, distinct numbers, numbers sent more than once (the first `limit` of them)."""
        return state.tally.summary(limit)

    @router.get("/requests")
    async def request_log() -> Response:
        return _json(list(state.requests.entries))

    @router.get("/pushes")
    async def push_log() -> Response:
        return _json({"pending": pushes.pending, "done": list(state.pushes.entries)})

    @router.get("/pushes/summary")
    async def push_summary() -> dict[str, Any]:
        """Push counts since the last reset, without the log: pending, delivered, given up."""
        return pushes.summary()

    @router.get("/faults")
    async def get_faults() -> Faults:
        return state.faults

    @router.post("/faults")
    async def set_faults(faults: Faults) -> Faults:
        state.faults = faults
        return state.faults

    @router.get("/state")
    async def get_state() -> dict[str, Any]:
        return state.snapshot()

    @router.post("/state")
    async def set_state(update: StateUpdate) -> dict[str, Any]:
        _apply(state, update)
        return state.snapshot()

    @router.post("/reset")
    async def reset() -> dict[str, str]:
        pushes.cancel_all()
        state.reset()
        return {"status": "reset"}

    @router.post("/mo")
    async def mo(request: MoRequest) -> dict[str, str]:
        sender = mo_senders.get(request.vendor)
        if sender is None:
            raise HTTPException(404, f"no MO push for {request.vendor}")
        return sender(request)

    return router


def _json(content: Any) -> Response:
    """The logs as JSON, straight from `json`: they hold only JSON types, and FastAPI's own
    encoding of 200,000 entries would hold the event loop for seconds."""
    return Response(json.dumps(content, ensure_ascii=False), media_type="application/json")


def _apply(state: SandboxState, update: StateUpdate) -> None:
    if update.account is None:
        names: tuple[str, ...] = ACCOUNTS
    elif update.account in ACCOUNT_GROUPS:
        names = ACCOUNT_GROUPS[update.account]
    elif update.account in ACCOUNTS:
        names = (update.account,)
    else:
        raise HTTPException(422, f"account must be one of {[*ACCOUNTS, *ACCOUNT_GROUPS]}")
    for name in names:
        account = state.accounts[name]
        if update.status is not None:
            account.status = update.status
        if update.ip_blocked is not None:
            account.ip_blocked = update.ip_blocked
        if update.balance is not None:
            account.balance = update.balance
    if update.undeliverable is not None:
        state.undeliverable = set(update.undeliverable)
    if update.blacklist is not None:
        state.blacklist = set(update.blacklist)
    if update.clock_offset_s is not None:
        state.clock.offset_s = update.clock_offset_s
