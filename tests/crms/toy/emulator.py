"""Toybook's wire API in the sandbox: JSON people under /toybook/v1, an API key in a header,
creates that upsert on the Enginy id, and a one-row "latest change" query."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from crm_pipelines.enginy.crm_side import SeedData
from crm_pipelines.sandbox.app import SandboxContext
from crm_pipelines.sandbox.seed import seed_text, seed_time

CRM = "toybook"
PREFIX = "/toybook/v1"
API_KEY = "toy-key-0000"
FIELDS = ["given_name", "surname", "email", "title", "enginy_id"]


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)


def _person(record) -> dict:
    return {"id": record.id, **record.fields, "modified": record.modified_at.isoformat(), "deleted": record.is_deleted}


def routes(ctx: SandboxContext) -> list[BaseRoute]:
    def authorised(request: Request) -> bool:
        return request.headers.get("x-toybook-key") == API_KEY

    async def people(request: Request) -> Response:
        if not authorised(request):
            return _error(401, "bad key")
        if request.method == "GET":
            since = request.query_params.get("modified_after")
            rows = [_person(r) for r in ctx.store.records(CRM, "people", include_deleted=True)
                    if since is None or r.modified_at.isoformat() > since]
            rows.sort(key=lambda row: row["modified"], reverse="latest" in request.query_params)
            return JSONResponse(rows[:1] if "latest" in request.query_params else rows)
        body = await request.json()
        unknown = set(body) - set(FIELDS)
        if unknown or not body.get("surname"):
            return _error(422, f"unknown fields {sorted(unknown)}" if unknown else "surname is required")
        held = next((r for r in ctx.store.records(CRM, "people") if r.fields.get("enginy_id") == body.get("enginy_id")
                     and body.get("enginy_id")), None)
        if held is not None:  # a create sent again updates the person it made
            return JSONResponse(_person(ctx.store.update(CRM, "people", held.id, body)), status_code=200)
        record = ctx.store.create(CRM, "people", f"tp{len(ctx.store.records(CRM, 'people', True)) + 1}", body)
        return JSONResponse(_person(record), status_code=201)

    async def person(request: Request) -> Response:
        if not authorised(request):
            return _error(401, "bad key")
        record = ctx.store.get(CRM, "people", request.path_params["id"])
        if record is None:
            return _error(404, "no such person")
        body = await request.json()
        if set(body) - set(FIELDS):
            return _error(422, f"unknown fields {sorted(set(body) - set(FIELDS))}")
        return JSONResponse(_person(ctx.store.update(CRM, "people", record.id, body)))

    async def fields(request: Request) -> Response:
        return JSONResponse([{"name": name, "required": name == "surname"} for name in FIELDS])

    return [ctx.route(CRM, f"{PREFIX}/people", people, ["GET", "POST"], _error),
            ctx.route(CRM, f"{PREFIX}/people/{{id}}", person, ["PATCH"], _error),
            ctx.route(CRM, f"{PREFIX}/fields", fields, ["GET"], _error)]


def seed(ctx: SandboxContext, seed: SeedData) -> None:
    for row in seed.contacts.to_dict("records"):
        ctx.store.create(CRM, "people", f"seed-{row['seed_id']}", {
            "given_name": seed_text(row["first_name"]), "surname": seed_text(row["last_name"]),
            "email": seed_text(row["email"]), "title": seed_text(row["job_title"])},
            at=seed_time(row["modified_at"]))


def client_environment(sandbox) -> dict[str, str]:
    return {"TOYBOOK_BASE_URL": sandbox.base_url + PREFIX, "TOYBOOK_API_KEY": API_KEY}
