"""Oldbook, an older in-house CRM with page-number paging (see the package docstring).

  GET /oldbook/v1/{contacts|accounts}?page=&per_page=&modified_after=<epoch seconds>
      → {"items": [...], "page": N, "per_page": M, "total_pages": T}   (deleted records included)
  PUT /oldbook/v1/{contacts|accounts}/external/{external_ref} → 201 created | 200 updated, {"record": …}
  PUT /oldbook/v1/{contacts|accounts}/{id} → 200 {"record": …}
  DELETE /oldbook/v1/{contacts|accounts}/{id} → status becomes "deleted"

Its API key goes in ``Authorization: Token <key>``. It has no users endpoint and no sort.
Settings (PATCH /_sandbox/settings/oldbook): ``api_key``, ``max_per_page``.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

import pandas as pd
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from crm_pipelines.sandbox.app import SandboxContext
from crm_pipelines.enginy.crm_side import SeedData
from crm_pipelines.sandbox.store import Record

from . import ApiError, custom_crm_environment, error_response, json_body, text, when

CRM = "oldbook"
API_KEY = "ob-sandbox-token-1111"
PREFIX = "/oldbook/v1"
ID_FIELD = {"contacts": "contact_id", "accounts": "account_id"}
FIELDS = {
    "contacts": {"given_name", "family_name", "mail", "tel", "position", "linkedin", "account_ref", "rep",
                 "external_ref", "seq_status", "campaign_list", "open_count"},
    "accounts": {"title", "web", "linkedin", "rep", "external_ref", "size"},
}
REQUIRED = {"contacts": "family_name", "accounts": "title"}


def wire(obj: str, record: Record) -> dict[str, Any]:
    return {ID_FIELD[obj]: int(record.id), **{k: v for k, v in record.fields.items() if not k.startswith("_")},
            "last_changed": int(record.modified_at.timestamp()), "status": "deleted" if record.is_deleted else "active"}


def _check(obj: str, body: dict[str, Any], creating: bool) -> dict[str, Any]:
    unknown = sorted(set(body) - FIELDS[obj])
    if unknown:
        raise ApiError(400, f"field '{unknown[0]}' does not exist on {obj}")
    if creating and not text(body.get(REQUIRED[obj])):
        raise ApiError(400, f"'{REQUIRED[obj]}' may not be empty")
    if body.get("open_count") not in (None, ""):
        try:
            body["open_count"] = int(float(body["open_count"]))
        except ValueError:
            raise ApiError(400, "'open_count' must be a whole number") from None
    return body


def routes(ctx: SandboxContext) -> list[BaseRoute]:
    def endpoint(path: str, handler: Callable[[Request], Awaitable[tuple[int, Any]]], methods: list[str]) -> BaseRoute:
        async def serve(request: Request) -> Response:
            key = ctx.crm_settings(CRM).get("api_key", API_KEY)
            if request.headers.get("authorization") != f"Token {key}":
                return error_response(403, "Forbidden: bad token", "fault")
            try:
                status, body = await handler(request)
            except ApiError as error:
                return error_response(error.status, error.message, "fault")
            return JSONResponse(body, status_code=status)

        return ctx.route(CRM, path, serve, methods, lambda status, message: error_response(status, message, "fault"))

    def table(request: Request) -> str:
        return request.url.path.split("/")[3]

    async def listing(request: Request) -> tuple[int, Any]:
        obj = table(request)
        q = request.query_params
        page, per_page = int(q.get("page", 1)), int(q.get("per_page", 25))
        ceiling = int(ctx.crm_settings(CRM).get("max_per_page", 100))
        if page < 1 or not 0 < per_page <= ceiling:
            raise ApiError(400, f"page starts at 1; per_page is 1..{ceiling}")
        rows = sorted(ctx.store.records(CRM, obj, include_deleted=True), key=lambda r: int(r.id))
        if q.get("modified_after"):
            after = datetime.fromtimestamp(int(q["modified_after"]), tz=timezone.utc)
            rows = [r for r in rows if r.modified_at >= after]
        chunk = rows[(page - 1) * per_page:page * per_page]
        return 200, {"items": [wire(obj, r) for r in chunk], "page": page, "per_page": per_page,
                     "total_pages": max(1, math.ceil(len(rows) / per_page))}

    async def upsert(request: Request) -> tuple[int, Any]:
        obj, ref = table(request), request.path_params["ref"]
        body = await json_body(request)
        with ctx.store.lock:
            held = next((r for r in ctx.store.records(CRM, obj) if r.fields.get("external_ref") == ref), None)
            body = _check(obj, {**body, "external_ref": ref}, creating=held is None)
            if held is not None:
                return 200, {"record": wire(obj, ctx.store.update(CRM, obj, held.id, body, request_id=
                                                                  request.state.request_id))}
            new_id = str(len(ctx.store.records(CRM, obj, include_deleted=True)) + 1)
            return 201, {"record": wire(obj, ctx.store.create(CRM, obj, new_id, body,
                                                               request_id=request.state.request_id))}

    async def one(request: Request) -> tuple[int, Any]:
        obj, record_id = table(request), str(request.path_params["id"])
        record = ctx.store.get(CRM, obj, record_id)
        if record is None:
            raise ApiError(404, f"{obj[:-1]} {record_id} does not exist")
        if request.method == "DELETE":
            return 200, {"record": wire(obj, ctx.store.delete(CRM, obj, record_id))}
        if request.method == "PUT":
            body = _check(obj, await json_body(request), creating=False)
            record = ctx.store.update(CRM, obj, record_id, body, request_id=request.state.request_id)
        return 200, {"record": wire(obj, record)}

    # One route per resource, so stats and fault rules tell contacts from accounts.
    return [*[endpoint(f"{PREFIX}/{obj}", listing, ["GET"]) for obj in FIELDS],
            *[endpoint(f"{PREFIX}/{obj}/external/{{ref}}", upsert, ["PUT"]) for obj in FIELDS],
            *[endpoint(f"{PREFIX}/{obj}/{{id:int}}", one, ["GET", "PUT", "DELETE"]) for obj in FIELDS]]


def seed(ctx: SandboxContext, seed: SeedData) -> None:
    accounts = {}
    for i, row in enumerate(seed.companies.itertuples(index=False), start=1):
        record = ctx.store.create(CRM, "accounts", str(i), {
            "title": text(row.name), "web": text(row.domain) or text(row.website), "linkedin": text(row.linkedin_url),
            "size": None if pd.isna(row.employees) else int(row.employees)}, at=when(row.created_at))
        record.modified_at = max(record.created_at, when(row.modified_at) or record.created_at)
        accounts[row.seed_id] = record.id
    for i, row in enumerate(seed.contacts.itertuples(index=False), start=1):
        record = ctx.store.create(CRM, "contacts", str(i), {
            "given_name": text(row.first_name), "family_name": text(row.last_name), "mail": text(row.email),
            "tel": text(row.phone), "position": text(row.job_title), "linkedin": text(row.linkedin_url),
            "account_ref": accounts.get(text(row.company_seed_id) or "")}, at=when(row.created_at))
        record.modified_at = max(record.created_at, when(row.modified_at) or record.created_at)



def client_environment(sandbox) -> dict[str, str]:
    return custom_crm_environment(CRM, PREFIX, API_KEY, sandbox)
