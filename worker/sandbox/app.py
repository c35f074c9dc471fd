"""The sandbox ASGI app: every simulated vendor on its own paths, on one port.

`create_app(config)` builds it (from the environment, SANDBOX_*, when `config` is None), so
`uvicorn --factory worker.sandbox.app:create_app` serves it; `python -m worker.sandbox` too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from worker.sandbox import chuangrui, log_masking, veesing_common
from worker.sandbox.chuangrui import Chuangrui
from worker.sandbox.config import SandboxConfig
from worker.sandbox.control import MoRequest, MoSender, control_router
from worker.sandbox.fivec import FiveC
from worker.sandbox.middleware import FaultReply, VendorMiddleware
from worker.sandbox.pushes import PushSender
from worker.sandbox.state import SandboxState
from worker.sandbox.veesing_mms import VeesingMms
from worker.sandbox.veesing_sms import VeesingSms
from worker.sandbox.veesing_voice import VeesingVoice


def create_app(
    config: SandboxConfig | None = None,
    *,
    push_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """The sandbox app; `push_transport` lets tests receive the pushes in-process."""
    config = config if config is not None else SandboxConfig()
    state = SandboxState(config)
    pushes = PushSender(config, state, transport=push_transport)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        log_masking.install(config)
        await pushes.start()
        yield
        await pushes.close()

    app = FastAPI(title="herald vendor sandbox", lifespan=lifespan, openapi_url=None)
    app.state.sandbox = state
    app.state.pushes = pushes

    veesing_sms = VeesingSms(config, state, pushes)
    app.include_router(veesing_sms.router())
    app.include_router(VeesingMms(config, state, pushes).router())
    app.include_router(VeesingVoice(config, state, pushes).router())

    chuangrui_sms = Chuangrui(config, state, pushes)
    app.include_router(chuangrui_sms.router())
    fivec = FiveC(config, state)
    app.include_router(fivec.router())

    def veesing_mo(request: MoRequest) -> dict[str, str]:
        return veesing_sms.push_mo(request.phone, request.content, request.ref)

    def chuangrui_mo(request: MoRequest) -> dict[str, str]:
        items = [request, *request.more]
        return chuangrui_sms.push_mo([(mo.phone, mo.content, mo.extno) for mo in items])

    mo_senders: dict[str, MoSender] = {"veesing": veesing_mo, "chuangrui": chuangrui_mo}
    app.include_router(control_router(state, pushes, mo_senders))
    app.include_router(fivec.control_router())

    fault_replies: list[FaultReply] = [
        ("/smsApi", veesing_common.fault_reply),
        ("/mmsApi", veesing_common.fault_reply),
        ("/voiceApi", veesing_common.fault_reply),
        ("/chuangrui", chuangrui.fault_reply),
        ("/api/send/", fivec.fault_reply),
    ]
    app.add_middleware(VendorMiddleware, state=state, fault_replies=fault_replies)
    return app
