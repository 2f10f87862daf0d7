"""The sandbox's HTTP application: every CRM's routes, faults, accounting and control API.

The three CRMs' URL spaces do not overlap (Salesforce under /services, HubSpot under /crm,
/oauth and /engagements, Dynamics under /api/data and its authority under /{tenant}), so one
server on one port answers all of them, and each CRM module contributes routes.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from crm_pipelines.sandbox.faults import FaultRule, Faults, Stats
from crm_pipelines.sandbox.store import Store

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
    # Which CRMs this server answers for; all by default (every_crm is defined further down).
    crms: tuple[str, ...] = field(default_factory=lambda: every_crm())

    def crm_settings(self, crm: str) -> dict[str, Any]:
        return self.settings.setdefault(crm, {})

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


def every_crm() -> tuple[str, ...]:
    from crm_pipelines.sandbox import crms  # the CRM modules import this one

    return tuple(module.CRM for module in crms.MODULES)


def build_app(ctx: SandboxContext) -> Starlette:
    from crm_pipelines.sandbox import crms

    routes: list[BaseRoute] = control_routes(ctx)
    for module in crms.MODULES:
        if module.CRM in ctx.crms:
            routes.extend(module.routes(ctx))
    return Starlette(routes=routes)
