"""Zoho CRM's HTTP surface as crm_pipelines.crms.zoho.client calls it: the accounts server's token
endpoint and the CRM API v7 (records, COQL, deleted records, fields, users, upsert).

Every CRM call is checked in Zoho's order: the access token (``Authorization: Zoho-oauthtoken``;
an unknown or expired one is ``401 INVALID_TOKEN``), then the concurrency limit (``429
TOO_MANY_REQUESTS``). Errors have Zoho's body — ``code``, ``details``, ``message``, ``status:
error`` — and writes answer one such entry per record (207 when some failed, 400 when all did).
Empty listings answer ``204 No Content``, as Zoho does. Times are ISO 8601 with an offset, to
the second.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qsl

import pandas as pd
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from crm_pipelines.sandbox.app import SandboxContext
from crm_pipelines.sandbox.store import Record

from . import coql
from .fields import CRM, DEFAULT_DUPLICATE_CHECK, MODULES, READ_ONLY, Field, fields_of

VERSION = "v7"
API = f"/crm/{VERSION}"
TOKEN_PATH = "/oauth/v2/token"
CLIENT_ID = "1000.SANDBOXZOHOCLIENT0000000000000"
CLIENT_SECRET = "sandbox-zoho-client-secret-0000000000000000"
REFRESH_TOKEN = "1000.sandbox-zoho-refresh-token.0000000000000000"
DEFAULTS: dict[str, Any] = {"token_seconds": 3600, "tokens_per_10_minutes": 10, "concurrency": 10}
MAX_PER_PAGE = 200
MAX_DISCRETE = 2000  # records reachable with page/per_page; beyond, page_token
MAX_WRITE = 100
ID_BASE = 4150868000000200000
Handler = Callable[[Request], Awaitable[Response]]


class ZohoError(Exception):
    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details or {}

    def response(self) -> Response:
        return JSONResponse({"code": self.code, "details": self.details, "message": self.message,
                             "status": "error"}, status_code=self.status)


def error_shape(status: int, message: str) -> Response:
    """Injected faults as Zoho answers them."""
    if status == 429:
        return ZohoError(429, "TOO_MANY_REQUESTS", "too many requests continuously").response()
    if status == 401:
        return ZohoError(401, "INVALID_TOKEN", "invalid oauth token").response()
    return ZohoError(status, "INTERNAL_ERROR" if status >= 500 else "INVALID_REQUEST", message).response()


# --- per-account state: access tokens and calls in flight -----------------------------------------

@dataclass
class _Account:
    tokens: dict[str, float] = field(default_factory=dict)  # access token → time.monotonic() of expiry
    issued: list[float] = field(default_factory=list)  # when access tokens were issued (the 10-minute limit)
    in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)




def _account(ctx: SandboxContext) -> _Account:
    """A reset sandbox is a fresh Zoho org: earlier tokens no longer work."""
    return ctx.state_of("zoho.account", _Account, reset_with_store=True)


def _setting(ctx: SandboxContext, name: str) -> Any:
    return ctx.crm_settings(CRM).get(name, DEFAULTS.get(name))


def expire_tokens(ctx: SandboxContext) -> None:
    """Every access token issued so far stops working (as an hour passing would do)."""
    account = _account(ctx)
    with account.lock:
        account.tokens.clear()


# --- values on the wire -------------------------------------------------------------------------

def wire_time(when: datetime) -> str:
    return when.astimezone(timezone.utc).replace(microsecond=0).isoformat()


def _seconds(when: datetime) -> datetime:
    """Zoho keeps times to the second; filters compare at that precision."""
    return when.replace(microsecond=0)


def _parse_time(value: str, what: str) -> datetime:
    try:
        stamp = pd.Timestamp(value)
    except ValueError:
        raise ZohoError(400, "INVALID_DATA", f"{what}: {value!r} is not an ISO 8601 date-time",
                        {"param_name": what}) from None
    if stamp.tzinfo is None:
        raise ZohoError(400, "INVALID_DATA", f"{what}: give the offset, e.g. 2026-01-05T10:00:00+00:00",
                        {"param_name": what})
    return stamp.to_pydatetime()


def row(record: Record) -> dict[str, Any]:
    """A record as COQL and sorting see it: times as datetimes, lookups by id."""
    return {**{k: v for k, v in record.fields.items() if not k.startswith("_")}, "id": record.id,
            "Created_Time": _seconds(record.created_at), "Modified_Time": _seconds(record.modified_at)}


def wire(ctx: SandboxContext, module: str, record: Record, wanted: list[str] | None = None,
         lookups_by_id_only: bool = False) -> dict[str, Any]:
    known = fields_of(module)
    names = [n for n in (wanted if wanted is not None else known) if n in known]
    out: dict[str, Any] = {"id": record.id}
    for name in names:
        spec = known[name]
        if name in ("Created_Time", "Modified_Time"):
            out[name] = wire_time(record.created_at if name == "Created_Time" else record.modified_at)
        elif spec.data_type in ("lookup", "ownerlookup"):
            out[name] = _lookup(ctx, spec, record.fields.get(name), lookups_by_id_only)
        elif name != "id":
            out[name] = record.fields.get(name)
    return out


def _lookup(ctx: SandboxContext, spec: Field, target_id: Any, by_id_only: bool) -> dict[str, Any] | None:
    if not target_id:
        return None
    if by_id_only:
        return {"id": str(target_id)}
    target = ctx.store.get(CRM, spec.lookup_module or "", str(target_id), include_deleted=True)
    if target is None:
        return {"id": str(target_id), "name": None}
    if spec.lookup_module == "users":
        return {"id": target.id, "name": target.fields.get("full_name"), "email": target.fields.get("email")}
    return {"id": target.id, "name": target.fields.get("Account_Name")}


def _user(record: Record) -> dict[str, Any]:
    f = record.fields
    return {"id": record.id, "first_name": f.get("first_name"), "last_name": f.get("last_name"),
            "full_name": f.get("full_name"), "email": f.get("email"),
            "status": "active" if f.get("active", True) else "disabled",
            "role": {"name": "CEO", "id": "4150868000000026005"}, "profile": {"name": "Administrator",
                                                                             "id": "4150868000000026011"},
            "created_time": wire_time(record.created_at), "Modified_Time": wire_time(record.modified_at)}


# --- writes -------------------------------------------------------------------------------------

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class _RecordError(Exception):
    def __init__(self, code: str, message: str, details: dict[str, Any]) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details

    def entry(self) -> dict[str, Any]:
        return {"code": self.code, "details": self.details, "message": self.message, "status": "error"}


def next_id(ctx: SandboxContext, module: str) -> str:
    with ctx.store.lock:
        ids = [int(r.id) for r in ctx.store.records(CRM, module, include_deleted=True)]
        return str(max(ids, default=ID_BASE) + 1)


def _clean(ctx: SandboxContext, module: str, data: dict[str, Any], index: int, creating: bool) -> dict[str, Any]:
    """A record's values checked as Zoho checks them; lookups kept by id."""
    known = fields_of(module)
    values: dict[str, Any] = {}
    for name, value in data.items():
        path = f"$.data[{index}].{name}"
        spec = known.get(name)
        if name == "id" or name == "$append_values" or name == "trigger":
            continue
        if spec is None:
            raise _RecordError("INVALID_DATA", "invalid field", {"api_name": name, "json_path": path})
        if name in READ_ONLY:
            raise _RecordError("INVALID_DATA", "the field is read only", {"api_name": name, "json_path": path})
        if value in (None, ""):
            values[name] = None
            continue
        kind = spec.data_type
        if kind in ("lookup", "ownerlookup"):
            target = value.get("id") if isinstance(value, dict) else value
            if ctx.store.get(CRM, spec.lookup_module or "", str(target)) is None:
                raise _RecordError("INVALID_DATA", "the related id given seems to be invalid",
                                   {"api_name": name, "json_path": f"{path}.id" if isinstance(value, dict) else path})
            values[name] = str(target)
        elif kind == "integer":
            try:
                values[name] = int(value)
            except (TypeError, ValueError):
                raise _RecordError("INVALID_DATA", "invalid data", {"api_name": name, "json_path": path,
                                                                     "expected_data_type": "integer"}) from None
        elif kind == "email" and not _EMAIL.match(str(value)):
            raise _RecordError("INVALID_DATA", "invalid data", {"api_name": name, "json_path": path,
                                                                 "expected_data_type": "email"})
        elif kind == "picklist" and str(value) not in spec.options:
            raise _RecordError("INVALID_DATA", "invalid data", {"api_name": name, "json_path": path,
                                                                 "expected_data_type": "picklist"})
        elif not isinstance(value, (str, int, float, bool)):
            raise _RecordError("INVALID_DATA", "invalid data", {"api_name": name, "json_path": path,
                                                                 "expected_data_type": "string"})
        elif len(str(value)) > spec.length:
            raise _RecordError("INVALID_DATA", "invalid data", {"api_name": name, "json_path": path,
                                                                 "maximum_length": spec.length})
        else:
            values[name] = value
    if creating:
        for spec in known.values():
            if spec.mandatory and values.get(spec.api_name) in (None, ""):
                raise _RecordError("MANDATORY_NOT_FOUND", "required field not found",
                                   {"api_name": spec.api_name, "json_path": f"$.data[{index}].{spec.api_name}"})
    return values


def _same(a: Any, b: Any) -> bool:
    return a is not None and b is not None and str(a).strip().lower() == str(b).strip().lower()


def _holder(ctx: SandboxContext, module: str, name: str, value: Any, besides: str | None = None) -> Record | None:
    return next((r for r in ctx.store.records(CRM, module) if r.id != besides and _same(r.fields.get(name), value)),
                None)


def _check_unique(ctx: SandboxContext, module: str, values: dict[str, Any], index: int,
                  record_id: str | None) -> None:
    for spec in fields_of(module).values():
        if spec.unique and values.get(spec.api_name) is not None:
            other = _holder(ctx, module, spec.api_name, values[spec.api_name], besides=record_id)
            if other is not None:
                raise _RecordError("DUPLICATE_DATA", "duplicate data", {
                    "api_name": spec.api_name, "json_path": f"$.data[{index}].{spec.api_name}",
                    "duplicate_record": {"id": other.id, "module": {"api_name": module}}})


def _success(record: Record, action: str, duplicate_field: str | None = None) -> dict[str, Any]:
    entry = {"code": "SUCCESS", "details": {"Modified_Time": wire_time(record.modified_at), "id": record.id,
                                            "Created_Time": wire_time(record.created_at)},
             "message": "record added" if action == "insert" else "record updated", "status": "success"}
    if action != "plain":
        entry.update({"action": action, "duplicate_field": duplicate_field})
    return entry


def write(ctx: SandboxContext, module: str, body: dict[str, Any], mode: str, request_id: str) -> tuple[int, Any]:
    """Insert (POST), update (PUT) or upsert many records; one entry per record, in order."""
    items = body.get("data")
    if not isinstance(items, list) or not items:
        raise ZohoError(400, "INVALID_DATA", "the data given is empty or not a list", {"param_name": "data"})
    if len(items) > MAX_WRITE:
        raise ZohoError(400, "LIMIT_EXCEEDED", f"more than {MAX_WRITE} records in one call",
                        {"limit": MAX_WRITE, "api_name": "data"})
    check = body.get("duplicate_check_fields") or DEFAULT_DUPLICATE_CHECK[module]
    known = fields_of(module)
    allowed = set(DEFAULT_DUPLICATE_CHECK[module]) | {n for n, f in known.items() if f.unique}
    if mode == "upsert" and any(name not in allowed for name in check):
        bad = next(name for name in check if name not in allowed)
        raise ZohoError(400, "INVALID_DATA", "the field cannot be used to check duplicates (it must be a unique "
                                             "field)", {"api_name": bad, "param_name": "duplicate_check_fields"})
    entries: list[dict[str, Any]] = []
    with ctx.store.lock:
        for index, item in enumerate(items):
            try:
                if not isinstance(item, dict):
                    raise _RecordError("INVALID_DATA", "invalid data", {"json_path": f"$.data[{index}]"})
                existing, matched_by = None, None
                if mode == "update" or (mode == "upsert" and item.get("id")):
                    existing = ctx.store.get(CRM, module, str(item.get("id") or ""))
                    if existing is None:
                        raise _RecordError("INVALID_DATA", "the id given seems to be invalid",
                                           {"api_name": "id", "json_path": f"$.data[{index}].id"})
                elif mode == "upsert":
                    for name in check:
                        if item.get(name) not in (None, ""):
                            existing = _holder(ctx, module, name, item[name])
                            if existing is not None:
                                matched_by = name
                                break
                values = _clean(ctx, module, item, index, creating=existing is None)
                _check_unique(ctx, module, values, index, existing.id if existing else None)
                if existing is None:
                    record = ctx.store.create(CRM, module, next_id(ctx, module),
                                              {k: v for k, v in values.items() if v is not None}, request_id=request_id)
                    entries.append(_success(record, "insert" if mode == "upsert" else "plain"))
                else:
                    record = ctx.store.update(CRM, module, existing.id, values, request_id=request_id)
                    entries.append(_success(record, "update" if mode == "upsert" else "plain", matched_by))
            except _RecordError as error:
                entries.append(error.entry())
    failed = sum(e["status"] == "error" for e in entries)
    status = 400 if failed == len(entries) else 207 if failed else 201 if mode == "insert" else 200
    return status, {"data": entries}


# --- paging -------------------------------------------------------------------------------------

def _int_param(request: Request, name: str, default: int, ceiling: int | None = None) -> int:
    raw = request.query_params.get(name)
    try:
        value = int(raw) if raw not in (None, "") else default
    except ValueError:
        raise ZohoError(400, "INVALID_DATA", f"{name} must be a number", {"param_name": name}) from None
    if value < 1 or (ceiling is not None and value > ceiling):
        raise ZohoError(400, "INVALID_DATA", f"{name} must be between 1 and {ceiling}", {"param_name": name})
    return value


def _encode(token: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(token).encode()).decode()


def _decode(token: str) -> dict[str, Any]:
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))
    except ValueError:
        raise ZohoError(400, "INVALID_DATA", "invalid page_token", {"param_name": "page_token"}) from None


def _modified_since(request: Request) -> datetime | None:
    value = request.headers.get("If-Modified-Since")
    return _parse_time(value, "If-Modified-Since") if value else None


# --- routes -------------------------------------------------------------------------------------

def routes(ctx: SandboxContext) -> list[BaseRoute]:
    def endpoint(path: str, handler: Handler, methods: list[str]) -> BaseRoute:
        async def serve(request: Request) -> Response:
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            account = _account(ctx)
            if not header:
                return ZohoError(401, "AUTHENTICATION_FAILURE", "Authentication failed").response()
            with account.lock:
                expiry = account.tokens.get(token)
                valid = scheme == "Zoho-oauthtoken" and expiry is not None and expiry > time.monotonic()
                admitted = account.in_flight < int(_setting(ctx, "concurrency"))
                if valid and admitted:
                    account.in_flight += 1
            if not valid:
                return ZohoError(401, "INVALID_TOKEN", "invalid oauth token").response()
            if not admitted:
                return ZohoError(429, "TOO_MANY_REQUESTS", "concurrency limit exceeded",
                                 {"limit": _setting(ctx, "concurrency")}).response()
            try:
                return await handler(request)
            except ZohoError as error:
                return error.response()
            finally:
                with account.lock:
                    account.in_flight -= 1

        return ctx.route(CRM, path, serve, methods, error_shape)

    def module_of(request: Request) -> str:
        segment = request.url.path.split("/")[3]  # /crm/v7/<module>/…; settings/fields names it in the query
        module = request.path_params.get("module") or (segment if segment in MODULES else None) or \
            request.query_params.get("module")
        if not module:
            raise ZohoError(400, "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing",
                            {"param_name": "module"})
        if module not in MODULES:
            raise ZohoError(400, "INVALID_MODULE", "the module name given seems to be invalid",
                            {"resource_path_index": 0})
        return module

    async def json_body(request: Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.body() or b"{}")
        except json.JSONDecodeError:
            raise ZohoError(400, "INVALID_DATA", "body is not valid JSON") from None
        if not isinstance(body, dict):
            raise ZohoError(400, "INVALID_DATA", "body must be a JSON object")
        return body

    def answer(request: Request, status: int, body: Any, records: int) -> Response:
        if records:
            ctx.stats.count_records(CRM, request.method, request.state.endpoint, records)
        return JSONResponse(body, status_code=status)

    async def records(request: Request) -> Response:
        module = module_of(request)
        if request.method in ("POST", "PUT"):
            body = await json_body(request)
            status, out = write(ctx, module, body, "insert" if request.method == "POST" else "update",
                                request.state.request_id)
            return answer(request, status, out, len(out["data"]))
        wanted = [f.strip() for f in (request.query_params.get("fields") or "").split(",") if f.strip()]
        if not wanted:
            raise ZohoError(400, "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing",
                            {"param_name": "fields"})
        known = fields_of(module)
        unknown = next((f for f in wanted if f not in known), None)
        if unknown:
            raise ZohoError(400, "INVALID_DATA", "invalid field", {"api_name": unknown, "param_name": "fields"})
        if len(wanted) > 50:
            raise ZohoError(400, "LIMIT_EXCEEDED", "at most 50 fields", {"limit": 50, "param_name": "fields"})
        sort_by = request.query_params.get("sort_by", "id")
        order = request.query_params.get("sort_order", "desc")
        if sort_by not in ("id", "Created_Time", "Modified_Time") or order not in ("asc", "desc"):
            raise ZohoError(400, "INVALID_DATA", "sort_by must be id, Created_Time or Modified_Time; sort_order "
                                                 "asc or desc", {"param_name": "sort_by"})
        per_page = _int_param(request, "per_page", MAX_PER_PAGE, MAX_PER_PAGE)
        since = _modified_since(request)
        rows = [r for r in ctx.store.records(CRM, module) if since is None or _seconds(r.modified_at) > since]

        def key(r: Record) -> list[Any]:
            stamp = 0.0 if sort_by == "id" else _seconds(
                r.modified_at if sort_by == "Modified_Time" else r.created_at).timestamp()
            return [stamp, int(r.id)]

        rows.sort(key=key, reverse=order == "desc")
        token = request.query_params.get("page_token")
        page_number = 1
        if token:
            after = _decode(token)
            if [after.get("sort_by"), after.get("sort_order")] != [sort_by, order]:
                raise ZohoError(400, "INVALID_DATA", "the page_token belongs to another query",
                                {"param_name": "page_token"})
            rows = [r for r in rows if (key(r) > after["key"] if order == "asc" else key(r) < after["key"])]
            page = rows[:per_page]
            more = len(rows) > per_page
        else:
            page_number = _int_param(request, "page", 1)
            if page_number * per_page > MAX_DISCRETE:
                raise ZohoError(400, "DISCRETE_PAGINATION_LIMIT_EXCEEDED",
                                f"you cannot fetch more than {MAX_DISCRETE} records with page and per_page; "
                                "use page_token", {"limit": MAX_DISCRETE})
            page = rows[(page_number - 1) * per_page:page_number * per_page]
            more = len(rows) > page_number * per_page
        if not page:
            return Response(status_code=204)
        info = {"per_page": per_page, "count": len(page), "page": page_number, "sort_by": sort_by,
                "sort_order": order, "more_records": more, "next_page_token": None, "previous_page_token": None,
                "page_token_expiry": None}
        if more:
            info["next_page_token"] = _encode({"sort_by": sort_by, "sort_order": order, "key": key(page[-1])})
            info["page_token_expiry"] = wire_time(datetime.now(timezone.utc) + pd.Timedelta(days=1))
        return answer(request, 200, {"data": [wire(ctx, module, r, wanted) for r in page], "info": info}, len(page))

    async def record_one(request: Request) -> Response:
        module = module_of(request)
        record = ctx.store.get(CRM, module, request.path_params["id"])
        if record is None:
            if request.method == "GET":
                return Response(status_code=204)
            raise ZohoError(400, "INVALID_DATA", "the id given seems to be invalid", {"api_name": "id"})
        if request.method == "DELETE":
            ctx.store.delete(CRM, module, record.id, request_id=request.state.request_id)
            return answer(request, 200, {"data": [{"code": "SUCCESS", "details": {"id": record.id},
                                                   "message": "record deleted", "status": "success"}]}, 1)
        if request.method == "PUT":
            body = await json_body(request)
            items = body.get("data") if isinstance(body.get("data"), list) else []
            body["data"] = [{**item, "id": record.id} for item in items[:1]] or [{"id": record.id}]
            status, out = write(ctx, module, body, "update", request.state.request_id)
            return answer(request, status, out, 1)
        return answer(request, 200, {"data": [wire(ctx, module, record)]}, 1)

    async def upsert(request: Request) -> Response:
        module = module_of(request)
        status, out = write(ctx, module, await json_body(request), "upsert", request.state.request_id)
        return answer(request, status, out, len(out["data"]))

    async def deleted(request: Request) -> Response:
        module = module_of(request)
        kind = request.query_params.get("type", "all")
        if kind not in ("all", "recycle", "permanent"):
            raise ZohoError(400, "INVALID_DATA", "type must be all, recycle or permanent", {"param_name": "type"})
        per_page = _int_param(request, "per_page", MAX_PER_PAGE, MAX_PER_PAGE)
        page_number = _int_param(request, "page", 1)
        since = _modified_since(request)
        # The sandbox's deletions stay in the recycle bin; none are purged.
        gone = [] if kind == "permanent" else [
            r for r in ctx.store.records(CRM, module, include_deleted=True)
            if r.is_deleted and (since is None or _seconds(r.modified_at) > since)]
        gone.sort(key=lambda r: (r.modified_at, int(r.id)), reverse=True)
        page = gone[(page_number - 1) * per_page:page_number * per_page]
        if not page:
            return Response(status_code=204)
        owner = {"name": "Sandbox Admin", "id": str(ID_BASE)}
        data = [{"deleted_by": owner, "id": r.id, "display_name": r.fields.get("Last_Name") or
                 r.fields.get("Account_Name"), "type": "recycle", "created_by": owner,
                 "deleted_time": wire_time(r.modified_at)} for r in page]
        info = {"per_page": per_page, "count": len(page), "page": page_number,
                "more_records": len(gone) > page_number * per_page}
        return answer(request, 200, {"data": data, "info": info}, len(page))

    async def query(request: Request) -> Response:
        body = await json_body(request)
        text = body.get("select_query")
        if not isinstance(text, str) or not text.strip():
            raise ZohoError(400, "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing",
                            {"param_name": "select_query"})
        try:
            parsed = coql.parse(text)
        except coql.CoqlError as error:
            raise ZohoError(400, error.code, str(error), error.details) from None
        if parsed.module not in MODULES:
            raise ZohoError(400, "INVALID_QUERY", "invalid module given", {"module": parsed.module})
        known = fields_of(parsed.module)
        unknown = next((n for n in sorted(parsed.names) if n not in known), None)
        if unknown:
            raise ZohoError(400, "INVALID_QUERY", "invalid column given", {"column_name": unknown})
        by_id = {r.id: r for r in ctx.store.records(CRM, parsed.module)}
        try:
            page, more = coql.run(parsed, [row(r) for r in by_id.values()])
        except coql.CoqlError as error:
            raise ZohoError(400, error.code, str(error), error.details) from None
        if not page:
            return Response(status_code=204)
        data = [wire(ctx, parsed.module, by_id[r["id"]], parsed.fields, lookups_by_id_only=True) for r in page]
        return answer(request, 200, {"data": data, "info": {"count": len(data), "more_records": more}}, len(data))

    async def settings_fields(request: Request) -> Response:
        module = module_of(request)
        described = [f.describe(n) for n, f in enumerate(fields_of(module).values())]
        return answer(request, 200, {"fields": described}, len(described))

    async def users(request: Request) -> Response:
        kind = request.query_params.get("type", "AllUsers")
        per_page = _int_param(request, "per_page", MAX_PER_PAGE, MAX_PER_PAGE)
        page_number = _int_param(request, "page", 1)
        rows = sorted((r for r in ctx.store.records(CRM, "users")
                       if kind != "ActiveUsers" or r.fields.get("active", True)), key=lambda r: int(r.id))
        page = rows[(page_number - 1) * per_page:page_number * per_page]
        if not page:
            return Response(status_code=204)
        info = {"per_page": per_page, "count": len(page), "page": page_number,
                "more_records": len(rows) > page_number * per_page}
        return answer(request, 200, {"users": [_user(r) for r in page], "info": info}, len(page))

    async def token(request: Request) -> Response:
        """The accounts server: a refresh token buys a short-lived access token. Zoho answers a
        refused request 200 with an ``error`` (or 400 when too many tokens were asked for)."""
        # Zoho takes the parameters in the query string or a form body; parse_qsl needs no multipart.
        form = dict(parse_qsl((await request.body()).decode()))
        given = {**dict(request.query_params), **form}
        settings = ctx.crm_settings(CRM)
        if given.get("grant_type") != "refresh_token":
            return JSONResponse({"error": "unsupported_grant_type"})
        if (given.get("client_id"), given.get("client_secret")) != (
                settings.get("client_id", CLIENT_ID), settings.get("client_secret", CLIENT_SECRET)):
            return JSONResponse({"error": "invalid_client"})
        if given.get("refresh_token") != settings.get("refresh_token", REFRESH_TOKEN):
            return JSONResponse({"error": "invalid_code"})
        account = _account(ctx)
        now = time.monotonic()
        with account.lock:
            account.issued = [t for t in account.issued if now - t < 600]
            if len(account.issued) >= int(_setting(ctx, "tokens_per_10_minutes")):
                return JSONResponse({"error_description": "You have made too many requests continuously. Please "
                                                          "try again after some time.", "error": "Access Denied",
                                     "status": "failure"}, status_code=400)
            account.issued.append(now)
            access = f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"
            lifetime = float(_setting(ctx, "token_seconds"))
            account.tokens[access] = now + lifetime
        return JSONResponse({"access_token": access, "scope": "ZohoCRM.modules.ALL ZohoCRM.settings.ALL "
                                                              "ZohoCRM.users.READ ZohoCRM.coql.READ",
                             "api_domain": ctx.base_url, "token_type": "Bearer", "expires_in": int(lifetime)})

    return [
        ctx.route(CRM, TOKEN_PATH, token, ["POST"], error_shape),
        endpoint(f"{API}/coql", query, ["POST"]),
        endpoint(f"{API}/users", users, ["GET"]),
        endpoint(f"{API}/settings/fields", settings_fields, ["GET"]),
        # Each module's own routes, so call counts and fault rules can name one module; then any
        # other module name, answered INVALID_MODULE.
        *[route for module in (*MODULES, "{module}") for route in (
            endpoint(f"{API}/{module}/upsert", upsert, ["POST"]),
            endpoint(f"{API}/{module}/deleted", deleted, ["GET"]),
            endpoint(f"{API}/{module}/{{id}}", record_one, ["GET", "PUT", "DELETE"]),
            endpoint(f"{API}/{module}", records, ["GET", "POST", "PUT"]))],
    ]
