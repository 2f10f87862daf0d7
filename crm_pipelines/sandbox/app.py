"""The sandbox's HTTP application: every CRM's routes, faults, accounting and control API.

The emulated CRMs' URL spaces do not overlap (Salesforce under /services, HubSpot under /crm,
Dynamics under /api/data, Zoho under /crm/v7, …), so one server on one port answers all of
them; each CRM's emulator (crms/<crm>/emulator, found through the registry) contributes routes.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, TypeVar

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from crm_pipelines.crms.registry import emulated_names, emulator
from crm_pipelines.sandbox.faults import FaultRule, Faults, Stats
from crm_pipelines.sandbox.store import Store

T = TypeVar("T")
Handler = Callable[[Request], Awaitable[Response]]
ErrorShape = Callable[[int, str], Response]


class DropConnection(Exception):
    """Raised after a partial response so the server closes the socket mid-reply."""


@dataclass
class SandboxContext:
    """What every CRM module's handlers share."""

    store: Store = field(default_factory=Store)
    faults: Faults = field(default_factory=Faults)
    stats: Stats = field(default_factory=Stats)
    base_url: str = "https://127.0.0.1:8443"
    # Per-CRM knobs (quotas, rate limits, validation rules, token lifetimes) live here so the
    # control API and tests can change them at run time.
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Which CRMs this server answers for: every CRM the registry emulates, by default.
    crms: tuple[str, ...] = field(default_factory=emulated_names)
    # Each emulator's own state (sessions, tokens, rate-limit windows, indexes) under a key of its
    # own: owned by this context, so two sandboxes in one process never share it.
    emulator_state: dict[str, tuple[int | None, Any]] = field(default_factory=dict, repr=False)
    _state_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def crm_settings(self, crm: str) -> dict[str, Any]:
        return self.settings.setdefault(crm, {})

    def state_of(self, key: str, make: Callable[[], T], reset_with_store: bool = False) -> T:
        """The emulator state ``key``, made on first use; with ``reset_with_store`` made anew after
        the store is reset (a reset sandbox is a fresh account: earlier tokens and quotas go)."""
        generation = self.store.generation if reset_with_store else None
        with self._state_lock:
            held = self.emulator_state.get(key)
            if held is None or held[0] != generation:
                held = self.emulator_state[key] = (generation, make())
            return held[1]

    def route(self, crm: str, path: str, handler: Handler, methods: list[str],
              error_shape: ErrorShape) -> Route:
        """A route whose calls are counted and can be hit by injected faults."""
        return Route(path, _Endpoint(self, crm, path, handler, error_shape), methods=methods)


class _Endpoint:
    def __init__(self, ctx: SandboxContext, crm: str, template: str, handler: Handler,
                 error_shape: ErrorShape) -> None:
        self.ctx, self.crm, self.template = ctx, crm, template
        self.handler, self.error_shape = handler, error_shape

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.ctx.stats.call_started(self.crm)
        try:
            await self._answer(scope, receive, send)
        finally:
            self.ctx.stats.call_ended(self.crm)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.time()
        request = Request(scope, receive)
        method = request.method
        request.state.crm = self.crm
        request.state.endpoint = self.template
        request.state.request_id = uuid.uuid4().hex
        self.ctx.stats.count_call(self.crm, method, self.template)
        fault = self.ctx.faults.pick(self.crm, self.template, method)
        if fault is not None and fault.kind == "latency":
            await asyncio.sleep(fault.latency_ms / 1000)
            fault = None
        if fault is not None and fault.kind == "status":
            response = (JSONResponse(fault.body, status_code=fault.status) if fault.body is not None
                        else self.error_shape(fault.status, "fault injected by the sandbox"))
            if fault.retry_after is not None:
                response.headers["Retry-After"] = str(fault.retry_after)
        elif fault is not None and fault.kind == "drop" and fault.status == 0:
            # status 0 means drop before the handler runs: nothing is written.
            await _drop(send)
            return
        else:
            response = await self.handler(request)
            if fault is not None and fault.kind == "drop":
                # The write happened but the client never hears of it: the classic cause of
                # duplicates on retry, which the push must survive.
                await _drop(send)
                return
        self.ctx.stats.count_status(self.crm, response.status_code)
        await response(scope, receive, send)
        self.ctx.stats.record_span(self.crm, started, time.time(), response.status_code)


async def _drop(send: Send) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"1000"), (b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"partial": ', "more_body": True})
    raise DropConnection("connection dropped by an injected fault")


def control_routes(ctx: SandboxContext) -> list[BaseRoute]:
    """/_sandbox/: faults, stats, records with history, reset, settings."""

    async def stats(request: Request) -> Response:
        if request.method == "DELETE":
            ctx.stats.reset()
            return Response(status_code=204)
        return JSONResponse(ctx.stats.as_json())

    async def faults(request: Request) -> Response:
        if request.method == "POST":
            rule = ctx.faults.add(FaultRule.model_validate(await request.json()))
            return JSONResponse(rule.model_dump(), status_code=201)
        if request.method == "DELETE":
            ctx.faults.clear()
            return Response(status_code=204)
        return JSONResponse([r.model_dump() for r in ctx.faults.rules()])

    async def records(request: Request) -> Response:
        crm, obj = request.path_params["crm"], request.path_params["object"]
        rows = ctx.store.records(crm, obj, include_deleted=True)
        return JSONResponse([r.as_json() for r in rows])

    async def objects(request: Request) -> Response:
        return JSONResponse([{"crm": c, "object": o, "count": len(ctx.store.records(c, o))}
                             for c, o in ctx.store.objects()])

    async def settings(request: Request) -> Response:
        crm = request.path_params["crm"]
        if request.method == "PATCH":
            ctx.crm_settings(crm).update(await request.json())
        return JSONResponse(ctx.crm_settings(crm))

    async def reset(request: Request) -> Response:
        ctx.store.reset()
        ctx.stats.reset()
        ctx.faults.clear()
        return Response(status_code=204)

    return [
        Route("/_sandbox/stats", stats, methods=["GET", "DELETE"]),
        Route("/_sandbox/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route("/_sandbox/objects", objects, methods=["GET"]),
        Route("/_sandbox/records/{crm}/{object}", records, methods=["GET"]),
        Route("/_sandbox/settings/{crm}", settings, methods=["GET", "PATCH"]),
        Route("/_sandbox/reset", reset, methods=["POST"]),
    ]


def seed(ctx: SandboxContext, data) -> dict[str, int]:
    """Load the generator's CRM side into every CRM the sandbox serves; returns records per CRM."""
    loaded = {}
    for name in ctx.crms:
        emulator(name).seed(ctx, data)
        loaded[name] = sum(len(ctx.store.records(c, o)) for c, o in ctx.store.objects() if c == name)
    return loaded


def build_app(ctx: SandboxContext) -> Starlette:
    routes: list[BaseRoute] = control_routes(ctx)
    for name in ctx.crms:
        routes.extend(emulator(name).routes(ctx))
    return Starlette(routes=routes)
