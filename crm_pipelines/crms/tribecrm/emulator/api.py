"""TribeCRM's OData REST API as crm_pipelines.crms.tribecrm.client calls it, under ``/v1/odata``.

Every call is checked for the API key (``Authorization: Bearer <key>``), then against the rate
limit: ``burst_limit`` calls every ``window_seconds``, answered ``429`` with ``Retry-After`` past
it. Lists take ``$filter`` (OData v4: ``DateModified ge 2026-01-05T10:00:00Z``, ``ID eq <guid>``,
``Person/ID eq <guid>``), ``$orderby``, ``$top``, ``$skip``, ``$select``, ``$count=true`` and
``$expand=Person($select=ID)``; a page holds at most ``max_page_size`` rows and links the next
with ``@odata.nextLink``. Writes: POST creates (201 with the entity), PATCH or PUT updates the
given fields (204), DELETE removes a record for good (204) — TribeCRM keeps no deleted records to
list. Errors have OData's shape: ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from crm_pipelines.sandbox.app import SandboxContext
from crm_pipelines.sandbox.odata import QueryError, compile_filter, parse_orderby, parse_select, sort_rows
from crm_pipelines.sandbox.store import Record

from .entities import CRM, ENTITY_SETS, NAVIGATION, SYSTEM, metadata_xml, properties

API = "/v1/odata"
API_KEY = "tribe-sandbox-api-key-0000000000000000"
DEFAULTS: dict[str, Any] = {"burst_limit": 300, "window_seconds": 10, "max_page_size": 500}
Handler = Callable[[Request], Awaitable[Response]]
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class TribeError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self, headers: dict[str, str] | None = None) -> Response:
        return JSONResponse({"error": {"code": self.code, "message": self.message}}, status_code=self.status,
                            headers=headers)


def error_shape(status: int, message: str) -> Response:
    """Injected faults as TribeCRM answers them."""
    code = {429: "TooManyRequests", 401: "Unauthorized"}.get(status, "InternalServerError" if status >= 500
                                                              else "BadRequest")
    return TribeError(status, code, message).response()


def _setting(ctx: SandboxContext, name: str) -> Any:
    return ctx.crm_settings(CRM).get(name, DEFAULTS[name])


# --- rate limit ---------------------------------------------------------------------------------

@dataclass
class _Window:
    started: float = 0.0
    used: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)




def _admit(ctx: SandboxContext) -> float | None:
    """None when the call is admitted, else the seconds until the window turns."""
    limit = _setting(ctx, "burst_limit")
    if limit is None:
        return None
    window = ctx.state_of("tribecrm.window", _Window, reset_with_store=True)
    seconds = float(_setting(ctx, "window_seconds"))
    with window.lock:
        now = time.monotonic()
        if now - window.started >= seconds:
            window.started, window.used = now, 0
        if window.used < int(limit):
            window.used += 1
            return None
        return window.started + seconds - now


# --- values on the wire -------------------------------------------------------------------------

def wire_time(when: datetime) -> str:
    """TribeCRM answers times in UTC with milliseconds."""
    when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def row(record: Record, entity_set: str) -> dict[str, Any]:
    """A record as $filter and $orderby see it (navigation ids as ``Person__ID``)."""
    values = {k: v for k, v in record.fields.items() if not k.startswith("_") or k in properties(entity_set)}
    values.update({"ID": record.id, "DateCreated": record.created_at, "DateModified": record.modified_at})
    for name in NAVIGATION.get(entity_set, {}):
        values[f"{name}__ID"] = record.fields.get(f"{name}.ID")
    return values


def entity(ctx: SandboxContext, entity_set: str, record: Record, select: list[str] | None,
           expand: dict[str, list[str] | None]) -> dict[str, Any]:
    known = properties(entity_set)
    names = select if select is not None else list(known)
    out: dict[str, Any] = {"ID": record.id}
    for name in names:
        if name in ("DateCreated", "DateModified"):
            out[name] = wire_time(record.created_at if name == "DateCreated" else record.modified_at)
        elif name != "ID":
            out[name] = record.fields.get(name)
    if select is None:
        out["_Type"] = entity_set.replace("_", ".")
        out["_Name"] = _display_name(entity_set, record)
    for name, inner in expand.items():
        target_set = NAVIGATION[entity_set][name]
        target = ctx.store.get(CRM, target_set, str(record.fields.get(f"{name}.ID") or ""))
        out[name] = None if target is None else entity(ctx, target_set, target, inner, {})
    return out


def _display_name(entity_set: str, record: Record) -> str | None:
    f = record.fields
    if entity_set == "Relation_Person":
        return " ".join(p for p in (f.get("FirstName"), f.get("MiddleName"), f.get("LastName")) if p) or None
    return f.get("Name")


def _expand(text: str | None, entity_set: str) -> dict[str, list[str] | None]:
    """``Person($select=ID,LastName),Relation`` → {Person: [ID, LastName], Relation: None}."""
    out: dict[str, list[str] | None] = {}
    for match in re.finditer(r"\s*([A-Za-z_]+)\s*(?:\(\s*\$select=([^)]*)\))?\s*(?:,|$)", text or ""):
        name, inner = match.group(1), match.group(2)
        if not name:
            continue
        if name not in NAVIGATION.get(entity_set, {}):
            raise TribeError(400, "BadRequest", f"Could not find a navigation property named '{name}' on "
                                                f"'{entity_set}'.")
        out[name] = parse_select(inner) if inner else None
    return out


# --- writes -------------------------------------------------------------------------------------

def _values(ctx: SandboxContext, entity_set: str, body: Any, creating: bool) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise TribeError(400, "BadRequest", "The request body must be a JSON object.")
    known = properties(entity_set)
    values: dict[str, Any] = {}
    for name, value in body.items():
        if name in NAVIGATION.get(entity_set, {}):
            target = value.get("ID") if isinstance(value, dict) else None
            if not target or ctx.store.get(CRM, NAVIGATION[entity_set][name], str(target)) is None:
                raise TribeError(400, "ValidationFailed", f"{name}.ID does not refer to an existing "
                                                          f"{NAVIGATION[entity_set][name]}.")
            values[f"{name}.ID"] = str(target)
            continue
        spec = known.get(name)
        if spec is None:
            raise TribeError(400, "BadRequest", f"The property '{name}' does not exist on type 'Tribe.{entity_set}'.")
        if name in SYSTEM:
            raise TribeError(400, "BadRequest", f"The property '{name}' is read-only.")
        if value in (None, ""):
            values[name] = None
        elif spec.type == "Edm.Int32":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
                raise TribeError(400, "BadRequest", f"Cannot convert the literal '{value}' to the expected type "
                                                    "'Edm.Int32'.")
            values[name] = int(value)
        elif spec.type == "Edm.Boolean":
            if not isinstance(value, bool):
                raise TribeError(400, "BadRequest", f"Cannot convert '{value}' to 'Edm.Boolean'.")
            values[name] = value
        elif not isinstance(value, str):
            raise TribeError(400, "BadRequest", f"Cannot convert '{value}' to 'Edm.String' for '{name}'.")
        elif spec.max_length and len(value) > spec.max_length:
            raise TribeError(400, "ValidationFailed", f"{name} is longer than {spec.max_length} characters.")
        else:
            values[name] = value
    if creating:
        missing = [p.name for p in known.values() if p.required and values.get(p.name) in (None, "")]
        missing += [f"{n}.ID" for n in NAVIGATION.get(entity_set, {}) if not values.get(f"{n}.ID")]
        if missing:
            raise TribeError(400, "ValidationFailed", f"{missing[0]} is mandatory.")
    elif any(values.get(p.name, "set") in (None, "") for p in known.values() if p.required):
        raise TribeError(400, "ValidationFailed", "A mandatory field cannot be emptied.")
    return values


# --- routes -------------------------------------------------------------------------------------

def routes(ctx: SandboxContext) -> list[BaseRoute]:
    def endpoint(path: str, handler: Handler, methods: list[str]) -> BaseRoute:
        async def serve(request: Request) -> Response:
            key = ctx.crm_settings(CRM).get("api_key", API_KEY)
            if request.headers.get("Authorization") != f"Bearer {key}":
                return TribeError(401, "Unauthorized", "The API key is missing or not valid.").response()
            wait = _admit(ctx)
            if wait is not None:
                return TribeError(429, "TooManyRequests", "Rate limit exceeded; retry after the number of "
                                                          "seconds in Retry-After.").response(
                    {"Retry-After": str(max(1, math.ceil(wait)))})
            try:
                return await handler(request)
            except TribeError as error:
                return error.response()
            except QueryError as error:
                return TribeError(400, "BadRequest", str(error).replace("Microsoft.Dynamics.CRM.", "Tribe.")
                                  ).response()

        return ctx.route(CRM, path, serve, methods, error_shape)

    def entity_set_of(request: Request) -> str:
        name = request.path_params.get("entity_set") or request.url.path.split("/")[3].split("(")[0]
        if name not in ENTITY_SETS:
            raise TribeError(404, "NotFound", f"No resource was found for the segment '{name}'.")
        return name

    def counted(request: Request, n: int) -> None:
        if n:
            ctx.stats.count_records(CRM, request.method, request.state.endpoint, n)

    async def body_of(request: Request) -> Any:
        try:
            return json.loads(await request.body() or b"{}")
        except json.JSONDecodeError:
            raise TribeError(400, "BadRequest", "The request body is not valid JSON.") from None

    async def collection(request: Request) -> Response:
        entity_set = entity_set_of(request)
        if request.method == "POST":
            values = _values(ctx, entity_set, await body_of(request), creating=True)
            record = ctx.store.create(CRM, entity_set, str(uuid.uuid4()),
                                      {k: v for k, v in values.items() if v is not None},
                                      request_id=request.state.request_id)
            counted(request, 1)
            return JSONResponse(entity(ctx, entity_set, record, None, {}), status_code=201,
                                headers={"Location": f"{ctx.base_url}{API}/{entity_set}({record.id})"})
        q = request.query_params
        known = properties(entity_set)
        names = set(known) | {f"{n}__ID" for n in NAVIGATION.get(entity_set, {})}
        # Navigation paths (Person/ID) are compared as the flat names the rows carry.
        predicate = (compile_filter(q["$filter"].replace("/ID", "__ID"), names.__contains__, entity_set)
                     if q.get("$filter") else None)
        order = parse_orderby(q.get("$orderby"))
        unknown = next((n for n, _ in order if n not in names), None)
        if unknown:
            raise TribeError(400, "BadRequest", f"Could not find a property named '{unknown}' on type "
                                                f"'Tribe.{entity_set}'.")

        def answer() -> tuple[list[Record], list[dict[str, Any]]]:
            rows = [(r, row(r, entity_set)) for r in ctx.store.records(CRM, entity_set)]
            if predicate is not None:
                rows = [(r, v) for r, v in rows if predicate(v)]
            by_values = {id(v): r for r, v in rows}
            ordered = sort_rows([v for _, v in rows], order + [("ID", False)])
            return [by_values[id(v)] for v in ordered], ordered

        # A pull's pages ($skip) share one filtered, sorted list while the table sees no write.
        records, ordered = ctx.store.answer(CRM, entity_set, f"list {q.get('$filter')} {order}", answer)
        select = parse_select(q.get("$select"))
        if select is not None:
            bad = next((n for n in select if n not in known), None)
            if bad:
                raise TribeError(400, "BadRequest", f"Could not find a property named '{bad}' on type "
                                                    f"'Tribe.{entity_set}'.")
        expand = _expand(q.get("$expand"), entity_set)
        try:
            skip = int(q.get("$skip", 0))
            top = int(q["$top"]) if q.get("$top") else None
        except ValueError:
            raise TribeError(400, "BadRequest", "$top and $skip must be whole numbers.") from None
        if skip < 0 or (top is not None and top < 0):
            raise TribeError(400, "BadRequest", "$top and $skip cannot be negative.")
        wanted = len(ordered) - skip if top is None else min(top, len(ordered) - skip)
        size = min(max(wanted, 0), int(_setting(ctx, "max_page_size")))
        page = ordered[skip:skip + size]
        counted(request, len(page))
        body: dict[str, Any] = {"@odata.context": f"{ctx.base_url}{API}/$metadata#{entity_set}"}
        if q.get("$count", "").lower() == "true":
            body["@odata.count"] = len(ordered)
        body["value"] = [entity(ctx, entity_set, record, select, expand) for record in records[skip:skip + size]]
        if size < wanted:
            following = {k: v for k, v in q.items() if k not in ("$skip", "$top")}
            following["$skip"] = str(skip + size)
            if top is not None:
                following["$top"] = str(top - size)
            body["@odata.nextLink"] = f"{ctx.base_url}{API}/{entity_set}?{urlencode(following)}"
        return JSONResponse(body)

    async def single(request: Request) -> Response:
        entity_set = entity_set_of(request)
        key = request.path_params["key"]
        if not _GUID.match(key):
            raise TribeError(400, "BadRequest", f"The key value '{key}' is not a valid Edm.Guid.")
        record = ctx.store.get(CRM, entity_set, key.lower())
        if record is None:
            raise TribeError(404, "NotFound", f"{entity_set}({key}) does not exist.")
        counted(request, 1)
        if request.method == "DELETE":
            ctx.store.delete(CRM, entity_set, record.id, request_id=request.state.request_id)
            return Response(status_code=204)
        if request.method in ("PATCH", "PUT"):
            values = _values(ctx, entity_set, await body_of(request), creating=False)
            ctx.store.update(CRM, entity_set, record.id, values, request_id=request.state.request_id)
            return Response(status_code=204)
        q = request.query_params
        return JSONResponse(entity(ctx, entity_set, record, parse_select(q.get("$select")),
                                   _expand(q.get("$expand"), entity_set)))

    async def metadata(request: Request) -> Response:
        return Response(metadata_xml(), media_type="application/xml")

    return [
        endpoint(f"{API}/$metadata", metadata, ["GET"]),
        # Each entity set's own routes, so call counts and fault rules can name one; then any other
        # name, answered 404.
        *[route for entity_set in (*ENTITY_SETS, "{entity_set}") for route in (
            endpoint(f"{API}/{entity_set}({{key}})", single, ["GET", "PATCH", "PUT", "DELETE"]),
            endpoint(f"{API}/{entity_set}", collection, ["GET", "POST"]))],
    ]
