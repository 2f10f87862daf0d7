"""HubSpot's HTTP surface as hubspot-api-client v12 calls it: CRM v3 objects (basic, batch,
search), properties, owners, and associations v4.

Every call is checked in HubSpot's order: URL length, the private app's bearer token, then the
rate limits; the answer carries HubSpot's rate-limit headers and, on failure, its error body
(status, message, correlationId, category).
"""

from __future__ import annotations

import bisect
import json
import uuid
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from crm_pipelines.sandbox.app import SandboxContext
from crm_pipelines.sandbox.store import Record

from . import associations as links
from . import records
from .limits import Limiter, RateLimited, admit
from .records import HubSpotError, not_found
from .schema import CRM, OBJECT_TYPE_IDS, add_custom_property, iso, object_type, schema_for
from .search import indexed, search

ACCESS_TOKEN = "pat-na1-sandbox-0000-0000-000000000000"
MAX_URL = 8_192  # HubSpot's edge refuses longer request lines with 414
MAX_LIST_PAGE = 100
MAX_BATCH = 100
MAX_OWNERS_PAGE = 500

Answer = tuple[int, Any]  # (status, JSON body or None)
Handler = Callable[[Request], Awaitable[Answer]]

def _limiter(ctx: SandboxContext) -> Limiter:
    """Limits restart with the store (a reset sandbox is a fresh account)."""
    return ctx.state_of("hubspot.limiter", Limiter, reset_with_store=True)


def _category(status: int) -> str:
    return {400: "VALIDATION_ERROR", 401: "INVALID_AUTHENTICATION", 403: "MISSING_SCOPES", 404: "OBJECT_NOT_FOUND",
            409: "CONFLICT", 414: "VALIDATION_ERROR", 429: "RATE_LIMITS"}.get(status, "INTERNAL_ERROR")


def error_shape(status: int, message: str) -> Response:
    """Injected faults as HubSpot answers them."""
    correlation = str(uuid.uuid4())
    if status == 429:
        return JSONResponse({"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
                             "errorType": "RATE_LIMIT", "correlationId": correlation,
                             "policyName": "TEN_SECONDLY_ROLLING"}, status_code=429)
    text = message if status < 500 else f"internal error ({message})"
    return JSONResponse({"status": "error", "message": text, "correlationId": correlation,
                         "category": _category(status)}, status_code=status)


def _error(error: HubSpotError) -> Response:
    return JSONResponse(error.body(str(uuid.uuid4())), status_code=error.status)


def _now() -> str:
    return iso(datetime.now(timezone.utc))


def _batch(results: list[Any], errors: list[dict[str, Any]] | None = None, status: int = 200) -> Answer:
    started = _now()
    body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": _now()}
    if errors:
        body["errors"], body["numErrors"] = errors, len(errors)
        return 207, body
    return status, body


def _object(request: Request, param: str = "objectType") -> str:
    name = object_type(request.path_params[param])
    if name is None:
        raise HubSpotError(400, "VALIDATION_ERROR", f"Unable to infer object type from: {request.path_params[param]}")
    return name


def _properties(request: Request) -> list[str]:
    return [p for raw in request.query_params.getlist("properties") for p in raw.split(",") if p]


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() == "true"


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except json.JSONDecodeError as exc:
        raise HubSpotError(400, "VALIDATION_ERROR", f"Invalid input JSON on line {exc.lineno}: {exc.msg}") from None
    if not isinstance(body, dict):
        raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON: expected an object")
    return body


def _inputs(body: dict[str, Any]) -> list[dict[str, Any]]:
    inputs = body.get("inputs")
    if not isinstance(inputs, list):
        raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON: inputs must be a list")
    if len(inputs) > MAX_BATCH:
        raise HubSpotError(400, "VALIDATION_ERROR",
                           f"Batch input size is {len(inputs)}; the limit is {MAX_BATCH} inputs per request")
    return inputs


def routes(ctx: SandboxContext) -> list[BaseRoute]:
    def endpoint(path: str, handler: Handler, methods: list[str], is_search: bool = False) -> BaseRoute:
        async def serve(request: Request) -> Response:
            if len(str(request.url)) > MAX_URL:
                return Response("<html><body><h1>414 Request-URI Too Large</h1></body></html>", status_code=414,
                                media_type="text/html")
            token = ctx.crm_settings(CRM).get("access_token", ACCESS_TOKEN)
            authorization = request.headers.get("authorization", "")
            if authorization != f"Bearer {token}":
                return _error(HubSpotError(
                    401, "INVALID_AUTHENTICATION",
                    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can "
                    "find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"))
            try:
                headers = admit(_limiter(ctx), ctx.crm_settings(CRM), is_search)
            except RateLimited as limited:
                return JSONResponse({"status": "error", "message": limited.message, "errorType": "RATE_LIMIT",
                                     "correlationId": str(uuid.uuid4()), "policyName": limited.policy},
                                    status_code=429, headers=limited.headers)
            try:
                status, body = await handler(request)
            except HubSpotError as error:
                response = _error(error)
            else:
                response = Response(status_code=status) if body is None else JSONResponse(body, status_code=status)
                count = getattr(request.state, "records", 0)
                if count:
                    ctx.stats.count_records(CRM, request.method, request.state.endpoint, count)
            response.headers.update(headers)
            return response

        return ctx.route(CRM, path, serve, methods, error_shape)

    def counted(request: Request, n: int) -> None:
        request.state.records = n

    def wire(obj: str, record: Record, properties: list[str] | None) -> dict[str, Any]:
        return records.wire(ctx, obj, record, properties)

    # --- objects ------------------------------------------------------------------------------
    async def objects(request: Request) -> Answer:
        obj = _object(request)
        if request.method == "POST":
            body = await _json(request)
            record = _create(ctx, obj, body, request.state.request_id)
            counted(request, 1)
            return 201, wire(obj, record, list(body.get("properties") or {}))
        limit = int(request.query_params.get("limit", 10))
        if not 0 < limit <= MAX_LIST_PAGE:
            raise HubSpotError(400, "VALIDATION_ERROR", f"limit must be between 1 and {MAX_LIST_PAGE}; got {limit}")
        archived = _flag(request, "archived")
        after = request.query_params.get("after")
        # The list cursor is the last id served, so writes between pages never shift a page.
        if after and not after.isdigit():
            raise HubSpotError(400, "VALIDATION_ERROR", f"after must be a paging token; got {after!r}")
        keys, ids = ctx.store.ordered(CRM, obj, int)
        rows = []
        # By position, not a slice: a slice would copy the rest of a million ids for every page.
        for i in range(bisect.bisect_right(keys, int(after)) if after else 0, len(ids)):
            record = ctx.store.get(CRM, obj, ids[i], include_deleted=True)
            if record is not None and record.is_deleted == archived:
                rows.append(record)
                if len(rows) > limit:  # one more than the page: there is a next page
                    break
        page = rows[:limit]
        counted(request, len(page))
        properties = _properties(request)
        wanted = [object_type(a) for raw in request.query_params.getlist("associations") for a in raw.split(",") if a]
        results = []
        for record in page:
            shape = wire(obj, record, properties)
            if wanted:
                shape["associations"] = _v3_associations(ctx, obj, record.id, [w for w in wanted if w])
            results.append(shape)
        body: dict[str, Any] = {"results": results}
        if len(rows) > limit:
            nxt = page[-1].id
            body["paging"] = {"next": {"after": nxt, "link": f"{ctx.base_url}{request.url.path}?after={nxt}"}}
        return 200, body

    async def one(request: Request) -> Answer:
        obj, record_id = _object(request), request.path_params["objectId"]
        id_property = request.query_params.get("idProperty")
        record = records.get(ctx, obj, record_id, id_property, include_archived=_flag(request, "archived"))
        if record is None:
            raise not_found(obj)
        if request.method == "GET":
            counted(request, 1)
            return 200, wire(obj, record, _properties(request))
        if request.method == "DELETE":
            ctx.store.delete(CRM, obj, record.id, request_id=request.state.request_id)
            counted(request, 1)
            return 204, None
        body = await _json(request)
        updated = _update(ctx, obj, record, body.get("properties") or {}, request.state.request_id)
        counted(request, 1)
        return 200, wire(obj, updated, list(body.get("properties") or {}))

    async def object_search(request: Request) -> Answer:
        obj = _object(request)
        body = await _json(request)
        settings = ctx.crm_settings(CRM)
        visible = indexed(ctx.store.records(CRM, obj), float(settings.get("search_lag_seconds") or 0),
                          ctx.store.clock())
        page, total, following = search(obj, schema_for(settings, obj), visible, body)
        counted(request, len(page))
        properties = body.get("properties") or None
        answer: dict[str, Any] = {"total": total, "results": [wire(obj, r, properties) for r in page]}
        if following >= 0:
            answer["paging"] = {"next": {"after": str(following), "link": None}}
        return 200, answer

    async def batch_read(request: Request) -> Answer:
        obj = _object(request)
        body = await _json(request)
        inputs = _inputs(body)
        found, missing = [], []
        for item in inputs:
            record = records.get(ctx, obj, str(item.get("id")), body.get("idProperty"),
                                 include_archived=_flag(request, "archived"))
            (found.append(record) if record is not None else missing.append(str(item.get("id"))))
        counted(request, len(found))
        results = [wire(obj, r, body.get("properties") or None) for r in found]
        return _batch(results, _not_found_errors(obj, missing))

    async def batch_create(request: Request) -> Answer:
        obj = _object(request)
        inputs = _inputs(await _json(request))
        with ctx.store.lock:
            # HubSpot validates the whole batch before writing any of it.
            problems = [p for item in inputs
                        for p in records.check(ctx, obj, item.get("properties") or {}, creating=True)[1]]
            if problems:
                raise records.invalid(problems)
            _check_batch_unique(ctx, obj, [item.get("properties") or {} for item in inputs])
            created = [_create(ctx, obj, item, request.state.request_id) for item in inputs]
        counted(request, len(created))
        return _batch([wire(obj, r, list((i.get("properties") or {}))) for r, i in zip(created, inputs)], status=201)

    async def batch_update(request: Request) -> Answer:
        obj = _object(request)
        body = await _json(request)
        inputs = _inputs(body)
        with ctx.store.lock:
            targets, missing = [], []
            for item in inputs:
                record = records.get(ctx, obj, str(item.get("id")), item.get("idProperty"))
                if record is None:
                    missing.append(str(item.get("id")))
                else:
                    records.validate(ctx, obj, item.get("properties") or {}, creating=False)
                    targets.append((record, item.get("properties") or {}))
            updated = [_update(ctx, obj, r, props, request.state.request_id) for r, props in targets]
        counted(request, len(updated))
        return _batch([wire(obj, r, list(p)) for r, (_, p) in zip(updated, targets)], _not_found_errors(obj, missing))

    async def batch_upsert(request: Request) -> Answer:
        obj = _object(request)
        inputs = _inputs(await _json(request))
        results = []
        with ctx.store.lock:
            for item in inputs:
                id_property, key = item.get("idProperty"), item.get("id")
                if not id_property or key in (None, ""):
                    raise HubSpotError(400, "VALIDATION_ERROR", "Each upsert input needs idProperty and id")
                if id_property not in schema_for(ctx.crm_settings(CRM), obj).unique():
                    raise HubSpotError(400, "VALIDATION_ERROR",
                                       f"{id_property} is not a unique property of {obj}; upsert needs a property "
                                       "with unique values")
                records.validate(ctx, obj, item.get("properties") or {}, creating=False)
            for item in inputs:
                properties = dict(item.get("properties") or {})
                existing = records.find_by(ctx, obj, item["idProperty"], str(item["id"]))
                if existing is None:
                    properties.setdefault(item["idProperty"], item["id"])
                    record, new = _create(ctx, obj, {"properties": properties}, request.state.request_id), True
                else:
                    record, new = _update(ctx, obj, existing, properties, request.state.request_id), False
                results.append({**wire(obj, record, list(properties)), "new": new})
        counted(request, len(results))
        return _batch(results)

    async def batch_archive(request: Request) -> Answer:
        obj = _object(request)
        inputs = _inputs(await _json(request))
        archived = 0
        for item in inputs:
            record = ctx.store.get(CRM, obj, str(item.get("id")))
            if record is not None:  # archiving an archived or unknown id is not an error
                ctx.store.delete(CRM, obj, record.id, request_id=request.state.request_id)
                archived += 1
        counted(request, archived)
        return 204, None

    # --- properties ---------------------------------------------------------------------------
    async def properties(request: Request) -> Answer:
        obj = _object(request)
        settings = ctx.crm_settings(CRM)
        if request.method == "POST":
            try:
                prop = add_custom_property(settings, obj, await _json(request))
            except ValueError as exc:
                raise HubSpotError(409 if "already exists" in str(exc) else 400,
                                   "OBJECT_ALREADY_EXISTS" if "already exists" in str(exc) else "VALIDATION_ERROR",
                                   str(exc)) from None
            return 201, prop.describe()
        described = [p.describe() for p in schema_for(settings, obj).properties.values()]
        counted(request, len(described))
        return 200, {"results": described}

    async def property_one(request: Request) -> Answer:
        obj = _object(request)
        prop = schema_for(ctx.crm_settings(CRM), obj).get(request.path_params["propertyName"])
        if prop is None:
            raise HubSpotError(404, "OBJECT_NOT_FOUND",
                               f"Unable to find property {request.path_params['propertyName']} on {obj}")
        return 200, prop.describe()

    # --- owners -------------------------------------------------------------------------------
    async def owners(request: Request) -> Answer:
        limit = int(request.query_params.get("limit", 100))
        if not 0 < limit <= MAX_OWNERS_PAGE:
            raise HubSpotError(400, "VALIDATION_ERROR", f"limit must be between 1 and {MAX_OWNERS_PAGE}")
        archived = _flag(request, "archived")
        rows = sorted((r for r in ctx.store.records(CRM, "owners", include_deleted=archived)
                       if r.is_deleted == archived), key=lambda r: int(r.id))
        email = request.query_params.get("email")
        if email:
            rows = [r for r in rows if (r.fields.get("email") or "").lower() == email.lower()]
        after = request.query_params.get("after")
        if after:
            rows = [r for r in rows if int(r.id) > int(after)]
        page = rows[:limit]
        counted(request, len(page))
        body: dict[str, Any] = {"results": [_owner(r) for r in page]}
        if len(rows) > limit:
            body["paging"] = {"next": {"after": page[-1].id}}
        return 200, body

    async def owner_one(request: Request) -> Answer:
        record = ctx.store.get(CRM, "owners", request.path_params["ownerId"])
        if record is None:
            raise HubSpotError(404, "OBJECT_NOT_FOUND", f"No owner with id {request.path_params['ownerId']}")
        return 200, _owner(record)

    # --- associations v4 ----------------------------------------------------------------------
    async def pair_labels(request: Request) -> Answer:
        from_type, to_type = _object(request, "fromObjectType"), _object(request, "toObjectType")
        types = links.TYPES.get((from_type, to_type))
        if types is None:
            raise HubSpotError(400, "VALIDATION_ERROR", f"{from_type} cannot be associated with {to_type}")
        return 200, {"results": [links.spec(t, from_type, to_type) for t in types]}

    async def object_associations(request: Request) -> Answer:
        from_type, to_type = _object(request), _object(request, "toObjectType")
        record_id = request.path_params["objectId"]
        if ctx.store.get(CRM, from_type, record_id) is None:
            raise not_found(from_type)
        linked = links.linked(ctx, from_type, record_id, to_type)
        limit = int(request.query_params.get("limit", 500))
        after = request.query_params.get("after")
        if after:
            linked = [item for item in linked if int(item[0]) > int(after)]
        page = linked[:limit]
        counted(request, len(page))
        body: dict[str, Any] = {"results": [{"toObjectId": int(to_id), "associationTypes": [
            links.spec(t, from_type, to_type) for t in types]} for to_id, types in page]}
        if len(linked) > limit:
            body["paging"] = {"next": {"after": page[-1][0]}}
        return 200, body

    async def pair(request: Request) -> Answer:
        from_type, to_type = _object(request), _object(request, "toObjectType")
        from_id, to_id = request.path_params["objectId"], request.path_params["toObjectId"]
        if request.method == "DELETE":
            links.remove(ctx, from_type, from_id, to_type, to_id, request.state.request_id)
            counted(request, 1)
            return 204, None
        specs = await request.json()
        type_ids = [_type_id(s) for s in (specs if isinstance(specs, list) else [])]
        result = links.associate(ctx, from_type, from_id, to_type, to_id, type_ids, request.state.request_id)
        counted(request, 1)
        return 201, _labels_between(from_type, from_id, to_type, to_id, result)

    async def pair_default(request: Request) -> Answer:
        from_type, to_type = _object(request, "fromObjectType"), _object(request, "toObjectType")
        from_id, to_id = request.path_params["fromObjectId"], request.path_params["toObjectId"]
        links.associate(ctx, from_type, from_id, to_type, to_id, [], request.state.request_id)
        counted(request, 1)
        return _batch([_default_result(from_type, from_id, to_type, to_id)])

    async def batch_associations(request: Request) -> Answer:
        from_type, to_type = _object(request, "fromObjectType"), _object(request, "toObjectType")
        action = request.state.endpoint.split("/batch/", 1)[1]
        inputs = _inputs(await _json(request))
        rid = request.state.request_id
        counted(request, len(inputs))
        if action == "create":
            results = []
            for item in inputs:
                from_id, to_id = str(item["from"]["id"]), str(item["to"]["id"])
                type_ids = [_type_id(s) for s in item.get("types") or []]
                result = links.associate(ctx, from_type, from_id, to_type, to_id, type_ids, rid)
                results.append(_labels_between(from_type, from_id, to_type, to_id, result))
            return _batch(results, status=201)
        if action == "associate/default":
            for item in inputs:
                links.associate(ctx, from_type, str(item["from"]["id"]), to_type, str(item["to"]["id"]), [], rid)
            return _batch([_default_result(from_type, str(i["from"]["id"]), to_type, str(i["to"]["id"]))
                           for i in inputs])
        if action == "archive":
            for item in inputs:
                for to in item.get("to") or []:
                    links.remove(ctx, from_type, str(item["from"]["id"]), to_type, str(to["id"]), rid)
            return 204, None
        if action == "labels/archive":
            for item in inputs:
                type_ids = [_type_id(s) for s in item.get("types") or []]
                links.remove(ctx, from_type, str(item["from"]["id"]), to_type, str(item["to"]["id"]), rid, type_ids)
            return 204, None
        if action == "read":
            results, missing = [], []
            for item in inputs:
                from_id = str(item["id"])
                if ctx.store.get(CRM, from_type, from_id) is None:
                    missing.append(from_id)
                    continue
                linked = links.linked(ctx, from_type, from_id, to_type)
                results.append({"from": {"id": from_id}, "to": [
                    {"toObjectId": int(to_id), "associationTypes": [links.spec(t, from_type, to_type) for t in types]}
                    for to_id, types in linked]})
            return _batch(results, _not_found_errors(from_type, missing))
        raise HubSpotError(404, "OBJECT_NOT_FOUND", f"No batch action {action!r}")

    objects_path = "/crm/v3/objects/{objectType}"
    v4_objects = "/crm/v4/objects/{objectType}/{objectId}/associations"
    v4_batch = "/crm/v4/associations/{fromObjectType}/{toObjectType}"
    return [
        endpoint(f"{objects_path}/search", object_search, ["POST"], is_search=True),
        *[endpoint(f"{objects_path}/batch/{action}", handler, ["POST"])
          for action, handler in (("read", batch_read), ("create", batch_create), ("update", batch_update),
                                  ("upsert", batch_upsert), ("archive", batch_archive))],
        endpoint(objects_path, objects, ["GET", "POST"]),
        endpoint(f"{objects_path}/{{objectId}}", one, ["GET", "PATCH", "DELETE"]),
        endpoint("/crm/v3/properties/{objectType}", properties, ["GET", "POST"]),
        endpoint("/crm/v3/properties/{objectType}/{propertyName}", property_one, ["GET"]),
        endpoint("/crm/v3/owners/", owners, ["GET"]),
        endpoint("/crm/v3/owners", owners, ["GET"]),
        endpoint("/crm/v3/owners/{ownerId}", owner_one, ["GET"]),
        endpoint(f"{v4_batch}/labels", pair_labels, ["GET"]),
        *[endpoint(f"{v4_batch}/batch/{action}", batch_associations, ["POST"])
          for action in ("create", "read", "archive", "associate/default", "labels/archive")],
        endpoint("/crm/v4/objects/{fromObjectType}/{fromObjectId}/associations/default/{toObjectType}/{toObjectId}",
                 pair_default, ["PUT"]),
        endpoint(f"{v4_objects}/{{toObjectType}}", object_associations, ["GET"]),
        endpoint(f"{v4_objects}/{{toObjectType}}/{{toObjectId}}", pair, ["PUT", "DELETE"]),
    ]


def _type_id(spec: dict[str, Any]) -> int:
    try:
        return int(spec.get("associationTypeId", spec.get("typeId")))
    except (TypeError, ValueError):
        raise HubSpotError(400, "VALIDATION_ERROR", "Each association type needs an associationTypeId") from None


def _labels_between(from_type: str, from_id: str, to_type: str, to_id: str, type_ids: list[int]) -> dict[str, Any]:
    return {"fromObjectTypeId": OBJECT_TYPE_IDS[from_type], "fromObjectId": int(from_id),
            "toObjectTypeId": OBJECT_TYPE_IDS[to_type], "toObjectId": int(to_id),
            "labels": [label for t in type_ids if (label := links.TYPES[(from_type, to_type)].get(t))]}


def _default_result(from_type: str, from_id: str, to_type: str, to_id: str) -> dict[str, Any]:
    return {"from": {"id": from_id}, "to": {"id": to_id},
            "associationSpec": {"associationCategory": "HUBSPOT_DEFINED",
                                "associationTypeId": links.default_type(from_type, to_type)}}


def _v3_associations(ctx: SandboxContext, obj: str, record_id: str, to_types: list[str]) -> dict[str, Any]:
    out = {}
    for to_type in to_types:
        if (obj, to_type) not in links.TYPES:
            continue
        out[to_type] = {"results": [
            {"id": to_id, "type": f"{obj[:-1]}_to_{to_type[:-1] if to_type != 'companies' else 'company'}"}
            for to_id, _ in links.linked(ctx, obj, record_id, to_type)]}
    return out


def _owner(record: Record) -> dict[str, Any]:
    f = record.fields
    return {"id": record.id, "email": f.get("email"), "firstName": f.get("firstName"), "lastName": f.get("lastName"),
            "userId": f.get("userId"), "createdAt": iso(record.created_at), "updatedAt": iso(record.modified_at),
            "archived": record.is_deleted, "type": "PERSON", "teams": []}


def _not_found_errors(obj: str, missing: list[str]) -> list[dict[str, Any]]:
    if not missing:
        return []
    return [{"status": "error", "category": "OBJECT_NOT_FOUND",
             "message": f"Could not get some {obj[:-1].upper()} objects, they may be deleted or not exist. "
                        "Check that ids are valid.",
             "context": {"ids": missing}}]


def _check_batch_unique(ctx: SandboxContext, obj: str, inputs: list[dict[str, Any]]) -> None:
    """Two inputs of one batch may not claim the same unique value either."""
    for name in schema_for(ctx.crm_settings(CRM), obj).unique():
        seen: dict[str, int] = {}
        for i, properties in enumerate(inputs):
            wanted = properties.get(name)
            if wanted in (None, ""):
                continue
            key = str(wanted).lower() if name == "email" else str(wanted)
            if key in seen:
                raise HubSpotError(400, "VALIDATION_ERROR",
                                   f"Duplicate {name} in inputs {seen[key]} and {i}: {wanted}")
            seen[key] = i


def _create(ctx: SandboxContext, obj: str, body: dict[str, Any], request_id: str) -> Record:
    """One create with its inline associations, as POST /objects and batch/create take them."""
    properties = dict(body.get("properties") or {})
    primary = properties.pop("associatedcompanyid", None) if obj == "contacts" else None
    inline = body.get("associations") or []
    with ctx.store.lock:
        plan = [_inline_target(ctx, obj, a) for a in inline]
        record = records.create(ctx, obj, properties, request_id)
        for to_type, to_id, type_ids in plan:
            links.associate(ctx, obj, record.id, to_type, to_id, type_ids, request_id)
        if primary not in (None, ""):
            links.set_primary_company(ctx, record.id, str(primary), request_id)
        return ctx.store.get(CRM, obj, record.id)


def _inline_target(ctx: SandboxContext, obj: str, association: dict[str, Any]) -> tuple[str, str, list[int]]:
    """Inline associations name only the target id and type ids; the type id says the target type."""
    to_id = str((association.get("to") or {}).get("id"))
    type_ids = [_type_id(s) for s in association.get("types") or []]
    for (from_type, to_type), types in links.TYPES.items():
        if from_type == obj and type_ids and all(t in types for t in type_ids):
            if ctx.store.get(CRM, to_type, to_id) is None:
                raise HubSpotError(400, "VALIDATION_ERROR", f"Association target {to_type} {to_id} does not exist")
            return to_type, to_id, type_ids
    raise HubSpotError(400, "VALIDATION_ERROR", f"associationTypeIds {type_ids} are not valid from {obj}")


def _update(ctx: SandboxContext, obj: str, record: Record, properties: dict[str, Any], request_id: str) -> Record:
    properties = dict(properties)
    has_primary = obj == "contacts" and "associatedcompanyid" in properties
    primary = properties.pop("associatedcompanyid", None) if has_primary else None
    with ctx.store.lock:
        updated = records.update(ctx, obj, record, properties, request_id) if properties else record
        if has_primary:
            links.set_primary_company(ctx, record.id, str(primary) if primary not in (None, "") else None, request_id)
        return ctx.store.get(CRM, obj, updated.id) or updated
