"""Northwind CRM, an in-house CRM with cursor paging (see the package docstring).

  GET  /northwind/api/{people|companies}?limit=&cursor=&updatedSince=&includeArchived=&enginyId=&sort=-updatedAt
       → {"data": [...], "meta": {"next_cursor": "…" | null}}
  POST /northwind/api/{people|companies} → 201 {"data": record}
  GET|PATCH|DELETE /northwind/api/{people|companies}/{id} → {"data": record} (DELETE archives)
  GET  /northwind/api/users → {"data": [...], "meta": {"next_cursor": null}}

Settings (PATCH /_sandbox/settings/northwind): ``api_key``, ``rate_limit`` (calls per
``rate_window_seconds``; None lifts it).
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

import pandas as pd
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from crm_pipelines.sandbox.app import SandboxContext
from crm_pipelines.enginy.crm_side import SeedData
from crm_pipelines.sandbox.store import Record

from . import ApiError, Window, custom_crm_environment, error_response, json_body, text, when

CRM = "northwind"
API_KEY = "nw-sandbox-key-0000"
PREFIX = "/northwind/api"
MAX_LIMIT = 200
DEFAULTS = {"rate_limit": 100, "rate_window_seconds": 10}
# The fields each object accepts (camelCase), beyond id, updatedAt and archived.
FIELDS = {
    "people": {"firstName", "lastName", "emailAddress", "phoneNumber", "title", "linkedinUrl", "companyId",
               "ownerId", "enginyId", "sequenceStatus", "campaignNames", "opens"},
    "companies": {"companyName", "website", "linkedinPage", "ownerId", "enginyId", "headcount"},
}
REQUIRED = {"people": "lastName", "companies": "companyName"}
SEQUENCE_STATUS = {"Not Started", "Ongoing", "Replied", "Finished"}


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def wire(record: Record) -> dict[str, Any]:
    return {"id": record.id, **{k: v for k, v in record.fields.items() if not k.startswith("_")},
            "createdAt": _iso(record.created_at), "updatedAt": _iso(record.modified_at), "archived": record.is_deleted}


def _cursor(record: Record) -> str:
    return base64.urlsafe_b64encode(f"{record.modified_at.isoformat()}|{record.id}".encode()).decode()


def _check(ctx: SandboxContext, obj: str, body: dict[str, Any], creating: bool) -> dict[str, Any]:
    unknown = sorted(set(body) - FIELDS[obj])
    if unknown:
        raise ApiError(422, f"unknown field {unknown[0]}")
    if creating and not text(body.get(REQUIRED[obj])):
        raise ApiError(422, f"{REQUIRED[obj]} is required")
    if body.get("sequenceStatus") not in (None, "", *SEQUENCE_STATUS):
        raise ApiError(422, f"sequenceStatus must be one of {', '.join(sorted(SEQUENCE_STATUS))}")
    if body.get("emailAddress") and "@" not in str(body["emailAddress"]):
        raise ApiError(422, "emailAddress is not an email address")
    if body.get("companyId") and ctx.store.get(CRM, "companies", str(body["companyId"])) is None:
        raise ApiError(422, f"company {body['companyId']} does not exist")
    if obj == "people" and body.get("enginyId"):
        held = [r for r in ctx.store.records(CRM, obj) if r.fields.get("enginyId") == body["enginyId"]]
        if held and creating:
            raise ApiError(409, f"a person with enginyId {body['enginyId']} exists already")
    return body


def routes(ctx: SandboxContext) -> list[BaseRoute]:
    window = ctx.state_of("northwind.window", Window)

    def endpoint(path: str, handler: Callable[[Request], Awaitable[tuple[int, Any]]], methods: list[str]) -> BaseRoute:
        async def serve(request: Request) -> Response:
            settings = {**DEFAULTS, **ctx.crm_settings(CRM)}
            if request.headers.get("x-api-key") != settings.get("api_key", API_KEY):
                return error_response(401, "missing or wrong X-Api-Key", "message")
            admitted, left, reset = window.admit(ctx, settings["rate_limit"], float(settings["rate_window_seconds"]))
            headers = {} if settings["rate_limit"] is None else {
                "X-RateLimit-Limit": str(settings["rate_limit"]), "X-RateLimit-Remaining": str(left),
                "X-RateLimit-Reset": str(int(reset) + 1)}
            if not admitted:
                response = error_response(429, "rate limit exceeded", "message")
            else:
                try:
                    status, body = await handler(request)
                    response = JSONResponse(body, status_code=status)
                except ApiError as error:
                    response = error_response(error.status, error.message, "message")
            response.headers.update(headers)
            return response

        return ctx.route(CRM, path, serve, methods, lambda status, message: error_response(status, message, "message"))

    async def listing(request: Request) -> tuple[int, Any]:
        obj = request.url.path.rstrip("/").rsplit("/", 1)[-1]
        if request.method == "POST":
            body = _check(ctx, obj, await json_body(request), creating=True)
            with ctx.store.lock:
                record = ctx.store.create(CRM, obj, f"{obj[0]}_{len(ctx.store.records(CRM, obj, True)) + 1}", body,
                                          request_id=request.state.request_id)
            return 201, {"data": wire(record)}
        q = request.query_params
        limit = int(q.get("limit", 50))
        if not 0 < limit <= MAX_LIMIT:
            raise ApiError(400, f"limit must be 1..{MAX_LIMIT}")
        rows = ctx.store.records(CRM, obj, include_deleted=q.get("includeArchived") == "true")
        if q.get("updatedSince"):
            since = pd.Timestamp(q["updatedSince"]).to_pydatetime()
            rows = [r for r in rows if r.modified_at >= since]
        if q.get("enginyId"):
            rows = [r for r in rows if r.fields.get("enginyId") == q["enginyId"]]
        newest_first = q.get("sort") == "-updatedAt"
        rows.sort(key=lambda r: (r.modified_at, r.id), reverse=newest_first)
        if q.get("cursor"):
            at, _, rid = base64.urlsafe_b64decode(q["cursor"].encode()).decode().partition("|")
            key = (datetime.fromisoformat(at), rid)
            rows = [r for r in rows if ((r.modified_at, r.id) < key if newest_first else (r.modified_at, r.id) > key)]
        page = rows[:limit]
        return 200, {"data": [wire(r) for r in page],
                     "meta": {"next_cursor": _cursor(page[-1]) if len(rows) > limit else None}}

    async def one(request: Request) -> tuple[int, Any]:
        obj, record_id = request.url.path.split("/")[3], request.path_params["id"]
        record = ctx.store.get(CRM, obj, record_id)
        if record is None:
            raise ApiError(404, f"{obj} {record_id} not found")
        if request.method == "PATCH":
            body = _check(ctx, obj, await json_body(request), creating=False)
            record = ctx.store.update(CRM, obj, record_id, body, request_id=request.state.request_id)
        elif request.method == "DELETE":
            record = ctx.store.delete(CRM, obj, record_id, request_id=request.state.request_id)
        return 200, {"data": wire(record)}

    async def users(request: Request) -> tuple[int, Any]:
        return 200, {"data": [wire(r) for r in ctx.store.records(CRM, "users")], "meta": {"next_cursor": None}}

    # One route per collection, so stats and fault rules tell people from companies.
    return [endpoint(f"{PREFIX}/users", users, ["GET"]),
            *[endpoint(f"{PREFIX}/{obj}", listing, ["GET", "POST"]) for obj in FIELDS],
            *[endpoint(f"{PREFIX}/{obj}/{{id}}", one, ["GET", "PATCH", "DELETE"]) for obj in FIELDS]]


def seed(ctx: SandboxContext, seed: SeedData) -> None:
    users = {}
    for i, row in enumerate(seed.users.itertuples(index=False), start=1):
        users[row.seed_id] = ctx.store.create(CRM, "users", f"u_{i}", {
            "email": text(row.email), "firstName": text(row.first_name), "lastName": text(row.last_name),
            "active": True}).id
    companies = {}
    for i, row in enumerate(seed.companies.itertuples(index=False), start=1):
        record = ctx.store.create(CRM, "companies", f"c_{i}", {
            "companyName": text(row.name), "website": text(row.website) or text(row.domain),
            "linkedinPage": text(row.linkedin_url), "ownerId": users.get(row.owner_seed_id),
            "headcount": None if pd.isna(row.employees) else int(row.employees)}, at=when(row.created_at))
        record.modified_at = max(record.created_at, when(row.modified_at) or record.created_at)
        companies[row.seed_id] = record.id
    for i, row in enumerate(seed.contacts.itertuples(index=False), start=1):
        record = ctx.store.create(CRM, "people", f"p_{i}", {
            "firstName": text(row.first_name), "lastName": text(row.last_name), "emailAddress": text(row.email),
            "phoneNumber": text(row.phone), "title": text(row.job_title), "linkedinUrl": text(row.linkedin_url),
            "companyId": companies.get(text(row.company_seed_id) or ""), "ownerId": users.get(row.owner_seed_id)},
            at=when(row.created_at))
        record.modified_at = max(record.created_at, when(row.modified_at) or record.created_at)



def client_environment(sandbox) -> dict[str, str]:
    return custom_crm_environment(CRM, PREFIX, API_KEY, sandbox)
