"""Pipedrive's HTTP surface as the pipeline's adapter calls it: API v2 persons and organizations
(cursor paging, ``updated_since``/``updated_until``, search), API v1 recents (changes and
deletions since a timestamp), leads, fields and users (``start``/``limit`` paging).

Every call is checked in Pipedrive's order: the API token (``api_token`` query parameter or
``x-api-token`` header), then the rate limit — a window of ``burst_limit`` calls every
``window_seconds``, reported in ``x-ratelimit-limit/-remaining/-reset`` on every answer and
answered 429 past it. Errors have Pipedrive's body: ``success: false``, ``error``, ``error_info``.
"""

from __future__ import annotations

import base64
import json
import math
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

import pandas as pd
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from crm_pipelines.sandbox.app import SandboxContext
from crm_pipelines.sandbox.store import Record

from .fields import CRM, FIELD_PATHS, add_custom_field, custom_fields, fields_for

API_TOKEN = "sandbox-pipedrive-api-token-0000000000"
DEFAULTS: dict[str, Any] = {"burst_limit": 80, "window_seconds": 2}
MAX_V2_LIMIT = 500
MAX_V1_LIMIT = 500
OBJECTS = {"persons": "persons", "organizations": "organizations"}
Answer = tuple[int, Any]
Handler = Callable[[Request], Awaitable[Answer]]


class PipedriveError(Exception):
    def __init__(self, status: int, error: str, info: str = "") -> None:
        super().__init__(error)
        self.status, self.error, self.info = status, error, info

    def response(self) -> Response:
        return JSONResponse({"success": False, "error": self.error, "errorCode": self.status,
                             "error_info": self.info or "Please check developers.pipedrive.com for more information "
                                                        "about Pipedrive API.", "data": None, "additional_data": None},
                            status_code=self.status)


def error_shape(status: int, message: str) -> Response:
    """Injected faults as Pipedrive answers them."""
    text = "Request over limit" if status == 429 else message if status < 500 else f"Internal server error ({message})"
    return PipedriveError(status, text).response()


# --- rate limit ---------------------------------------------------------------------------------

@dataclass
class _Window:
    started: float = 0.0
    used: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


_WINDOWS: dict[int, tuple[int, _Window]] = {}


def _window(ctx: SandboxContext) -> _Window:
    """A reset sandbox is a fresh company account with a fresh window."""
    held = _WINDOWS.get(id(ctx.store))
    if held is None or held[0] != ctx.store.generation:
        held = _WINDOWS[id(ctx.store)] = (ctx.store.generation, _Window())
    return held[1]


def _admit(ctx: SandboxContext) -> tuple[bool, dict[str, str]]:
    settings = ctx.crm_settings(CRM)
    limit = settings.get("burst_limit", DEFAULTS["burst_limit"])
    if limit is None:
        return True, {}
    seconds = float(settings.get("window_seconds", DEFAULTS["window_seconds"]))
    window = _window(ctx)
    with window.lock:
        now = time.monotonic()
        if now - window.started >= seconds:
            window.started, window.used = now, 0
        admitted = window.used < int(limit)
        window.used += admitted
        reset = max(1, math.ceil(window.started + seconds - now))
        return admitted, {"x-ratelimit-limit": str(limit), "x-ratelimit-remaining": str(int(limit) - window.used),
                          "x-ratelimit-reset": str(reset)}


# --- wire shapes --------------------------------------------------------------------------------

def v1_time(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def v2_time(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def lead_time(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _seconds(when: datetime) -> datetime:
    """Pipedrive keeps update_time to the second; filters compare at that precision."""
    return when.replace(microsecond=0)


def _int(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


def v2(ctx: SandboxContext, obj: str, record: Record) -> dict[str, Any]:
    f = record.fields
    custom = {key: f.get(key) for key in custom_fields(ctx.crm_settings(CRM), obj)}
    common = {"id": int(record.id), "name": f.get("name"), "owner_id": _int(f.get("owner_id")),
              "add_time": v2_time(record.created_at), "update_time": v2_time(record.modified_at),
              "is_deleted": record.is_deleted, "visible_to": 3, "label_ids": [], "custom_fields": custom}
    if obj == "organizations":
        return {**common, "address": f.get("address")}
    return {**common, "first_name": f.get("first_name"), "last_name": f.get("last_name"),
            "org_id": _int(f.get("org_id")), "emails": f.get("emails") or [], "phones": f.get("phones") or [],
            "job_title": f.get("job_title")}


def v1(ctx: SandboxContext, obj: str, record: Record) -> dict[str, Any]:
    """The v1 shape (recents): custom fields at the top level, owner and organization as objects."""
    f = record.fields
    owner = ctx.store.get(CRM, "users", str(f.get("owner_id")), include_deleted=True) if f.get("owner_id") else None
    shape = {"id": int(record.id), "name": f.get("name"), "active_flag": not record.is_deleted,
             "add_time": v1_time(record.created_at), "update_time": v1_time(record.modified_at),
             "owner_id": None if owner is None else {"id": int(owner.id), "value": int(owner.id),
                                                    "name": owner.fields.get("name"),
                                                    "email": owner.fields.get("email")},
             **{key: f.get(key) for key in custom_fields(ctx.crm_settings(CRM), obj)}}
    if obj == "persons":
        org = ctx.store.get(CRM, "organizations", str(f.get("org_id")), include_deleted=True) \
            if f.get("org_id") else None
        shape.update({"first_name": f.get("first_name"), "last_name": f.get("last_name"),
                      "email": f.get("emails") or [{"value": "", "primary": True}],
                      "phone": f.get("phones") or [{"value": "", "primary": True}], "job_title": f.get("job_title"),
                      "org_id": None if org is None else {"value": int(org.id), "name": org.fields.get("name")}})
    return shape


def lead(ctx: SandboxContext, record: Record) -> dict[str, Any]:
    f = record.fields
    return {"id": record.id, "title": f.get("title"), "owner_id": _int(f.get("owner_id")),
            "person_id": _int(f.get("person_id")), "organization_id": _int(f.get("organization_id")),
            "is_archived": bool(f.get("is_archived")), "label_ids": [], "source_name": "API", "was_seen": False,
            "value": None, "expected_close_date": None, "visible_to": "3",
            "add_time": lead_time(record.created_at), "update_time": lead_time(record.modified_at),
            **{key: f.get(key) for key in custom_fields(ctx.crm_settings(CRM), "leads")}}


def _user(record: Record) -> dict[str, Any]:
    f = record.fields
    return {"id": int(record.id), "name": f.get("name"), "email": f.get("email"), "active_flag": f.get("active", True),
            "is_admin": 0, "created": v1_time(record.created_at), "modified": v1_time(record.modified_at)}


# --- paging -------------------------------------------------------------------------------------

def _limit(request: Request, ceiling: int, default: int = 100) -> int:
    try:
        limit = int(request.query_params.get("limit", default))
    except ValueError:
        raise PipedriveError(400, "Validation failed: limit: Parameter 'limit' must be an integer") from None
    if not 0 < limit <= ceiling:
        raise PipedriveError(400, f"Validation failed: limit: Must be between 1 and {ceiling}")
    return limit


def encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def decode_cursor(cursor: str) -> list[Any]:
    try:
        return json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError:
        raise PipedriveError(400, "Validation failed: cursor: Invalid cursor") from None


def v1_page(request: Request, rows: list[Any]) -> tuple[list[Any], dict[str, Any]]:
    """start/limit paging with Pipedrive's additional_data.pagination."""
    limit = _limit(request, MAX_V1_LIMIT)
    start = int(request.query_params.get("start", 0))
    page = rows[start:start + limit]
    more = start + limit < len(rows)
    pagination: dict[str, Any] = {"start": start, "limit": limit, "more_items_in_collection": more}
    if more:
        pagination["next_start"] = start + limit
    return page, {"pagination": pagination}


def _time_param(request: Request, name: str) -> datetime | None:
    value = request.query_params.get(name)
    if not value:
        return None
    try:
        stamp = pd.Timestamp(value)
    except ValueError:
        raise PipedriveError(400, f"Validation failed: {name}: Must be an RFC3339 date-time") from None
    return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp).to_pydatetime()


# --- writes -------------------------------------------------------------------------------------

def _next_id(ctx: SandboxContext, obj: str) -> str:
    with ctx.store.lock:
        ids = [int(r.id) for r in ctx.store.records(CRM, obj, include_deleted=True)]
        return str(max(ids, default=0) + 1)


def _check_custom(ctx: SandboxContext, obj: str, values: dict[str, Any]) -> dict[str, Any]:
    known = custom_fields(ctx.crm_settings(CRM), obj)
    clean = {}
    for key, value in values.items():
        spec = known.get(key)
        if spec is None:
            raise PipedriveError(400, f"Validation failed: custom_fields: Unknown custom field key {key!r}")
        if value not in (None, "") and spec.field_type == "enum" and _int(value) not in {i for i, _ in spec.options}:
            raise PipedriveError(400, f"Validation failed: {spec.name}: option {value!r} does not exist")
        if value not in (None, "") and spec.field_type in ("double", "int", "monetary"):
            try:
                value = float(value) if spec.field_type != "int" else int(value)
            except ValueError:
                raise PipedriveError(400, f"Validation failed: {spec.name}: {value!r} is not a number") from None
        clean[key] = value
    return clean


def _check_link(ctx: SandboxContext, obj: str, value: Any, what: str) -> str | None:
    if value in (None, ""):
        return None
    if ctx.store.get(CRM, obj, str(value)) is None:
        raise PipedriveError(400, f"Validation failed: {what}: {what} with id {value} does not exist")
    return str(value)


def apply_v2(ctx: SandboxContext, obj: str, body: dict[str, Any], creating: bool) -> dict[str, Any]:
    """A v2 person or organization body as the fields the store keeps."""
    allowed = {"name", "owner_id", "custom_fields", "visible_to", "label_ids", "add_time"} | (
        {"first_name", "last_name", "org_id", "emails", "phones", "job_title", "marketing_status"}
        if obj == "persons" else {"address"})
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise PipedriveError(400, f"Validation failed: {unknown[0]}: Parameter is not allowed for this request")
    fields: dict[str, Any] = {}
    for key in ("name", "first_name", "last_name", "job_title", "address"):
        if key in body:
            fields[key] = body[key]
    if creating and not str(body.get("name") or "").strip():
        raise PipedriveError(400, "Validation failed: name: Parameter 'name' is required")
    if "name" in body and not str(body.get("name") or "").strip():
        raise PipedriveError(400, "Validation failed: name: Parameter 'name' must not be empty")
    if "owner_id" in body:
        fields["owner_id"] = _check_link(ctx, "users", body["owner_id"], "owner_id")
    if "org_id" in body:
        fields["org_id"] = _check_link(ctx, "organizations", body["org_id"], "org_id")
    for key in ("emails", "phones"):
        if key in body:
            items = body[key] or []
            if not isinstance(items, list) or not all(isinstance(i, dict) and "value" in i for i in items):
                raise PipedriveError(400, f"Validation failed: {key}: must be a list of {{value, primary, label}}")
            fields[key] = [{"value": i["value"], "primary": bool(i.get("primary", n == 0)),
                            "label": i.get("label", "work")} for n, i in enumerate(items)]
    fields.update(_check_custom(ctx, obj, body.get("custom_fields") or {}))
    return fields


def apply_lead(ctx: SandboxContext, body: dict[str, Any], creating: bool) -> dict[str, Any]:
    known = custom_fields(ctx.crm_settings(CRM), "leads")
    standard = {"title", "owner_id", "person_id", "organization_id", "is_archived", "label_ids", "value",
                "expected_close_date", "visible_to", "was_seen"}
    unknown = sorted(set(body) - standard - set(known))
    if unknown:
        raise PipedriveError(400, f"Validation failed: {unknown[0]}: unknown field")
    if creating and not str(body.get("title") or "").strip():
        raise PipedriveError(400, "Validation failed: title: Parameter 'title' is required")
    if creating and not (body.get("person_id") or body.get("organization_id")):
        raise PipedriveError(400, "A lead must be linked to a person or an organization or both")
    fields = {k: body[k] for k in ("title", "is_archived") if k in body}
    for key, target in (("owner_id", "users"), ("person_id", "persons"), ("organization_id", "organizations")):
        if key in body:
            fields[key] = _check_link(ctx, target, body[key], key)
    fields.update(_check_custom(ctx, "leads", {k: v for k, v in body.items() if k in known}))
    return fields


# --- routes -------------------------------------------------------------------------------------

def routes(ctx: SandboxContext) -> list[BaseRoute]:
    def endpoint(path: str, handler: Handler, methods: list[str]) -> BaseRoute:
        async def serve(request: Request) -> Response:
            token = ctx.crm_settings(CRM).get("api_token", API_TOKEN)
            given = request.query_params.get("api_token") or request.headers.get("x-api-token")
            if given != token:
                return JSONResponse({"success": False, "error": "unauthorized access", "errorCode": 401,
                                     "error_info": "Please check developers.pipedrive.com for more information "
                                                   "about Pipedrive API."}, status_code=401)
            admitted, headers = _admit(ctx)
            if not admitted:
                response = PipedriveError(429, "Request over limit").response()
            else:
                try:
                    status, body = await handler(request)
                    response = JSONResponse(body, status_code=status)
                    count = getattr(request.state, "records", 0)
                    if count:
                        ctx.stats.count_records(CRM, request.method, request.state.endpoint, count)
                except PipedriveError as error:
                    response = error.response()
            response.headers.update(headers)
            return response

        return ctx.route(CRM, path, serve, methods, error_shape)

    def counted(request: Request, n: int) -> None:
        request.state.records = n

    async def body_of(request: Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.body() or b"{}")
        except json.JSONDecodeError:
            raise PipedriveError(400, "Invalid JSON in request body") from None
        if not isinstance(body, dict):
            raise PipedriveError(400, "Request body must be a JSON object")
        return body

    def find(obj: str, record_id: str, include_deleted: bool = False) -> Record:
        record = ctx.store.get(CRM, obj, record_id, include_deleted=include_deleted)
        if record is None:
            what = {"persons": "Person", "organizations": "Organization", "leads": "Lead"}[obj]
            raise PipedriveError(404, f"{what} not found")
        return record

    # --- API v2: persons and organizations ------------------------------------------------------
    async def v2_list(request: Request) -> Answer:
        obj = OBJECTS[request.url.path.rstrip("/").rsplit("/", 1)[-1]]
        if request.method == "POST":
            fields = apply_v2(ctx, obj, await body_of(request), creating=True)
            with ctx.store.lock:
                record = ctx.store.create(CRM, obj, _next_id(ctx, obj), fields, request_id=request.state.request_id)
            counted(request, 1)
            return 200, {"success": True, "data": v2(ctx, obj, record)}
        limit = _limit(request, MAX_V2_LIMIT)
        sort_by = request.query_params.get("sort_by", "id")
        direction = request.query_params.get("sort_direction", "asc")
        if sort_by not in ("id", "update_time", "add_time") or direction not in ("asc", "desc"):
            raise PipedriveError(400, "Validation failed: sort_by: Must be one of id, update_time, add_time")
        since, until = _time_param(request, "updated_since"), _time_param(request, "updated_until")
        rows = [r for r in ctx.store.records(CRM, obj) if (since is None or _seconds(r.modified_at) >= since)
                and (until is None or _seconds(r.modified_at) < until)]
        ids = request.query_params.get("ids")
        if ids:
            wanted = {i.strip() for i in ids.split(",")}
            rows = [r for r in rows if r.id in wanted]

        def key(r: Record) -> list[Any]:
            stamp = {"id": 0, "update_time": _seconds(r.modified_at).timestamp(),
                     "add_time": _seconds(r.created_at).timestamp()}[sort_by]
            return [stamp, int(r.id)]

        rows.sort(key=key, reverse=direction == "desc")
        cursor = request.query_params.get("cursor")
        if cursor:
            after = decode_cursor(cursor)
            rows = [r for r in rows if (key(r) > after if direction == "asc" else key(r) < after)]
        page = rows[:limit]
        counted(request, len(page))
        next_cursor = encode_cursor(key(page[-1])) if len(rows) > limit else None
        return 200, {"success": True, "data": [v2(ctx, obj, r) for r in page],
                     "additional_data": {"next_cursor": next_cursor}}

    async def v2_one(request: Request) -> Answer:
        obj = OBJECTS[request.url.path.split("/")[3]]
        record = find(obj, str(request.path_params["id"]), include_deleted=request.method == "GET")
        if request.method == "DELETE":
            ctx.store.delete(CRM, obj, record.id, request_id=request.state.request_id)
            counted(request, 1)
            return 200, {"success": True, "data": {"id": int(record.id)}}
        if request.method == "PATCH":
            if record.is_deleted:
                raise PipedriveError(410, "Entity is deleted")
            fields = apply_v2(ctx, obj, await body_of(request), creating=False)
            record = ctx.store.update(CRM, obj, record.id, fields, request_id=request.state.request_id)
        counted(request, 1)
        return 200, {"success": True, "data": v2(ctx, obj, record)}

    async def v2_search(request: Request) -> Answer:
        """Exact or partial term search over names, emails and searchable custom fields."""
        obj = OBJECTS[request.url.path.split("/")[3]]
        term = (request.query_params.get("term") or "").strip()
        exact = request.query_params.get("exact_match", "false").lower() == "true"
        if len(term) < (1 if exact else 2):
            raise PipedriveError(400, "Validation failed: term: Search term must be at least 2 characters long")
        wanted = set((request.query_params.get("fields") or "name,email,custom_fields").split(","))
        searchable = [f.key for f in fields_for(ctx.crm_settings(CRM), obj) if f.custom
                      and f.field_type in ("varchar", "text", "varchar_auto")]

        def values(r: Record) -> list[str]:
            out = [r.fields.get("name")] if "name" in wanted else []
            if "email" in wanted:
                out += [e["value"] for e in r.fields.get("emails") or []]
            if "custom_fields" in wanted:
                out += [r.fields.get(k) for k in searchable]
            return [str(v) for v in out if v not in (None, "")]

        def hit(r: Record) -> bool:
            return any((v.lower() == term.lower()) if exact else term.lower() in v.lower() for v in values(r))

        rows = sorted((r for r in ctx.store.records(CRM, obj) if hit(r)), key=lambda r: int(r.id))
        limit = _limit(request, MAX_V2_LIMIT)
        cursor = request.query_params.get("cursor")
        if cursor:
            rows = [r for r in rows if int(r.id) > decode_cursor(cursor)[0]]
        page = rows[:limit]
        counted(request, len(page))
        items = [{"result_score": 1.0, "item": {"id": int(r.id), "type": obj[:-1], "name": r.fields.get("name"),
                                                 "custom_fields": [v for v in values(r)]}} for r in page]
        return 200, {"success": True, "data": {"items": items},
                     "additional_data": {"next_cursor": encode_cursor([int(page[-1].id)]) if len(rows) > limit
                                         else None}}

    # --- API v1: recents, leads, fields, users -------------------------------------------------
    async def recents(request: Request) -> Answer:
        since = request.query_params.get("since_timestamp")
        try:
            low = datetime.strptime(since or "", "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
        except ValueError:
            raise PipedriveError(400, "Validation failed: since_timestamp: Must be YYYY-MM-DD HH:MM:SS") from None
        items = [i.strip() for i in (request.query_params.get("items") or "person,organization").split(",")]
        changed = []
        for item in items:
            obj = {"person": "persons", "organization": "organizations"}.get(item)
            if obj is None:
                raise PipedriveError(400, f"Validation failed: items: {item!r} is not supported by this sandbox")
            changed += [(item, r) for r in ctx.store.records(CRM, obj, include_deleted=True)
                        if _seconds(r.modified_at) >= low]
        changed.sort(key=lambda pair: (_seconds(pair[1].modified_at), int(pair[1].id)))
        page, extra = v1_page(request, changed)
        counted(request, len(page))
        data = [{"item": item, "id": int(r.id), "data": v1(ctx, item + "s" if item == "person" else "organizations", r)}
                for item, r in page]
        last = v1_time(page[-1][1].modified_at) if page else None
        return 200, {"success": True, "data": data,
                     "additional_data": {"since_timestamp": since, "last_timestamp_on_page": last, **extra}}

    async def leads(request: Request) -> Answer:
        if request.method == "POST":
            fields = apply_lead(ctx, await body_of(request), creating=True)
            record = ctx.store.create(CRM, "leads", str(uuid.uuid4()), fields, request_id=request.state.request_id)
            counted(request, 1)
            return 201, {"success": True, "data": lead(ctx, record)}
        status = request.query_params.get("archived_status", "not_archived")
        rows = [r for r in ctx.store.records(CRM, "leads")
                if status == "all" or bool(r.fields.get("is_archived")) == (status == "archived")]
        sort = (request.query_params.get("sort") or "add_time ASC").split()
        if sort[0] not in ("add_time", "update_time", "id"):
            raise PipedriveError(400, "Validation failed: sort: unknown field")
        rows.sort(key=lambda r: (r.modified_at if sort[0] == "update_time" else r.created_at, r.id),
                  reverse=len(sort) > 1 and sort[1].upper() == "DESC")
        page, extra = v1_page(request, rows)
        counted(request, len(page))
        return 200, {"success": True, "data": [lead(ctx, r) for r in page], "additional_data": extra}

    async def lead_one(request: Request) -> Answer:
        record = find("leads", request.path_params["id"])
        if request.method == "DELETE":
            ctx.store.delete(CRM, "leads", record.id, request_id=request.state.request_id)
            return 200, {"success": True, "data": {"id": record.id}}
        if request.method == "PATCH":
            fields = apply_lead(ctx, await body_of(request), creating=False)
            record = ctx.store.update(CRM, "leads", record.id, fields, request_id=request.state.request_id)
        counted(request, 1)
        return 200, {"success": True, "data": lead(ctx, record)}

    async def field_list(request: Request) -> Answer:
        obj = FIELD_PATHS[request.url.path.rstrip("/").rsplit("/", 1)[-1]]
        settings = ctx.crm_settings(CRM)
        if request.method == "POST":
            try:
                created = add_custom_field(settings, obj, await body_of(request))
            except ValueError as exc:
                raise PipedriveError(400, str(exc)) from None
            return 200, {"success": True, "data": created.describe(len(fields_for(settings, obj)) - 1)}
        described = [f.describe(i) for i, f in enumerate(fields_for(settings, obj))]
        page, extra = v1_page(request, described)
        counted(request, len(page))
        return 200, {"success": True, "data": page, "additional_data": extra}

    async def users(request: Request) -> Answer:
        rows = sorted(ctx.store.records(CRM, "users"), key=lambda r: int(r.id))
        counted(request, len(rows))
        return 200, {"success": True, "data": [_user(r) for r in rows]}

    return [
        endpoint("/api/v2/persons/search", v2_search, ["GET"]),
        endpoint("/api/v2/organizations/search", v2_search, ["GET"]),
        endpoint("/api/v2/persons", v2_list, ["GET", "POST"]),
        endpoint("/api/v2/organizations", v2_list, ["GET", "POST"]),
        endpoint("/api/v2/persons/{id:int}", v2_one, ["GET", "PATCH", "DELETE"]),
        endpoint("/api/v2/organizations/{id:int}", v2_one, ["GET", "PATCH", "DELETE"]),
        endpoint("/v1/recents", recents, ["GET"]),
        endpoint("/v1/leads", leads, ["GET", "POST"]),
        endpoint("/v1/leads/{id}", lead_one, ["GET", "PATCH", "DELETE"]),
        *[endpoint(f"/v1/{path}", field_list, ["GET", "POST"]) for path in FIELD_PATHS],
        endpoint("/v1/users", users, ["GET"]),
    ]
