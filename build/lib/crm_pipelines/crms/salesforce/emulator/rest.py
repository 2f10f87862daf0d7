"""REST API: OAuth token, query/queryAll with paging, describe, sObject rows, upsert by
external id, sObject Collections, updated/deleted, limits."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crm_pipelines.sandbox.app import SandboxContext
from crm_pipelines.crms.salesforce.emulator import soql
from crm_pipelines.crms.salesforce.emulator.common import (
    SalesforceError, api, api_usage, error_shape, json_body, new_session, setting, state, version_of,
)
from crm_pipelines.crms.salesforce.emulator.reads import Reader
from crm_pipelines.crms.salesforce.emulator.schema import (
    API_VERSION, CRM, INTEGRATION_USER_ID, OBJECT_BY_PREFIX, OBJECTS, ORG_ID, canonical_object, describe_object, global_entry,
    to_id18,
)
from crm_pipelines.crms.salesforce.emulator.values import format_datetime, parse_datetime
from crm_pipelines.crms.salesforce.emulator.writes import Batch, RecordError, allow_save, delete

V = "/services/data/{version}"
MAX_COLLECTION = 200
DEFAULT_BATCH, MIN_BATCH, MAX_BATCH = 2000, 200, 2000
MAX_CURSORS = 100


def _obj(request: Request) -> str:
    name = request.path_params["sobject"]
    obj = canonical_object(name)
    if obj is None:
        raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
    return obj


def _record_errors(exc: RecordError) -> list[dict[str, Any]]:
    out = []
    for e in exc.errors:
        entry = {"message": e["message"], "errorCode": e["statusCode"], "fields": e["fields"]}
        if "duplicateResult" in e:
            entry = {"duplicateResult": e["duplicateResult"], **entry}
        out.append(entry)
    return out


def _count(ctx: SandboxContext, request: Request, n: int) -> None:
    ctx.stats.count_records(CRM, request.method, request.state.endpoint, n)


def _batch(ctx: SandboxContext, request: Request, obj: str) -> Batch:
    return Batch(ctx, obj, version_of(request),
                 allow_duplicates=allow_save(request.headers.get("sforce-duplicate-rule-header")),
                 request_id=request.state.request_id)


# --- OAuth -------------------------------------------------------------------------------------

def _oauth_error(code: str, description: str, status: int = 400) -> Response:
    return JSONResponse({"error": code, "error_description": description}, status_code=status)


def token_handler(ctx: SandboxContext):
    async def token(request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            try:
                cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
                form.setdefault("client_id", cid)
                form.setdefault("client_secret", secret)
            except ValueError:
                pass
        grant = form.get("grant_type")
        if grant not in ("client_credentials", "password"):
            return _oauth_error("unsupported_grant_type", "grant type not supported")
        if (form.get("client_id") != setting(ctx, "client_id")
                or form.get("client_secret") != setting(ctx, "client_secret")):
            return _oauth_error("invalid_client", "invalid client credentials")
        if grant == "password" and (form.get("username") != setting(ctx, "username")
                                    or form.get("password") != setting(ctx, "password")):
            return _oauth_error("invalid_grant", "authentication failure")
        issued_at = str(int(time.time() * 1000))
        identity = f"{ctx.base_url}/id/{ORG_ID}/{INTEGRATION_USER_ID}"
        signature = base64.b64encode(hmac.new(str(setting(ctx, "client_secret")).encode(),
                                              (identity + issued_at).encode(), hashlib.sha256).digest()).decode()
        return JSONResponse({
            "access_token": new_session(ctx), "instance_url": ctx.base_url, "id": identity,
            "token_type": "Bearer", "issued_at": issued_at, "signature": signature,
            "scope": "api",
        })
    return token


# --- Query -------------------------------------------------------------------------------------

def _batch_size(request: Request) -> int:
    options = request.headers.get("sforce-query-options", "")
    for part in options.split(","):
        key, _, value = part.partition("=")
        if key.strip().lower() == "batchsize" and value.strip().isdigit():
            return max(MIN_BATCH, min(MAX_BATCH, int(value.strip())))
    return DEFAULT_BATCH


def run_soql(ctx: SandboxContext, version: str, text: str, include_deleted: bool) -> tuple[Any, Reader, list]:
    reader = Reader(ctx, version)
    try:
        plan = soql.plan(text, reader.schemas)
        rows = reader.run(plan, include_deleted, datetime.now(timezone.utc))
    except soql.SoqlError as exc:
        raise SalesforceError(400, exc.code, exc.message) from None
    return plan, reader, rows


def _page(ctx: SandboxContext, request: Request, cursor_id: str, cursor: dict[str, Any], start: int) -> Response:
    rows, size = cursor["rows"], cursor["size"]
    end = min(start + size, len(rows))
    page = rows[start:end]
    body: dict[str, Any] = {"totalSize": len(rows), "done": end >= len(rows),
                            "records": [cursor["reader"].to_json(cursor["plan"], r) for r in page]}
    if end < len(rows):
        kind = "queryAll" if cursor["all"] else "query"
        body["nextRecordsUrl"] = f"/services/data/v{cursor['version']}/{kind}/{cursor_id}-{end}"
    else:
        with state(ctx).lock:
            state(ctx).cursors.pop(cursor_id, None)
    _count(ctx, request, len(page))
    return JSONResponse(body)


def query_handler(ctx: SandboxContext, include_deleted: bool):
    async def query(request: Request) -> Response:
        text = request.query_params.get("q")
        if not text:
            raise SalesforceError(400, "MALFORMED_QUERY", "A query string has to be specified")
        version = version_of(request)
        plan, reader, rows = run_soql(ctx, version, text, include_deleted)
        if plan.query.is_count:
            return JSONResponse({"totalSize": len(rows), "done": True, "records": []})
        cursor_id = "01g5g" + secrets.token_hex(7)[:13].upper()
        cursor = {"rows": rows, "size": _batch_size(request), "plan": plan, "reader": reader,
                  "version": version, "all": include_deleted}
        if len(rows) > cursor["size"]:
            with state(ctx).lock:
                cursors = state(ctx).cursors
                cursors[cursor_id] = cursor
                while len(cursors) > MAX_CURSORS:
                    cursors.pop(next(iter(cursors)))
        return _page(ctx, request, cursor_id, cursor, 0)
    return query


def query_more_handler(ctx: SandboxContext):
    async def query_more(request: Request) -> Response:
        locator = request.path_params["locator"]
        cursor_id, _, start = locator.rpartition("-")
        with state(ctx).lock:
            cursor = state(ctx).cursors.get(cursor_id)
        if cursor is None or not start.isdigit():
            raise SalesforceError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return _page(ctx, request, cursor_id, cursor, int(start))
    return query_more


# --- Describe, limits, versions ------------------------------------------------------------------

def describe_global_handler(ctx: SandboxContext):
    async def describe_global(request: Request) -> Response:
        base = f"/services/data/v{version_of(request)}"
        return JSONResponse({"encoding": "UTF-8", "maxBatchSize": MAX_COLLECTION,
                             "sobjects": [global_entry(o, base) for o in OBJECTS]})
    return describe_global


def describe_handler(ctx: SandboxContext):
    async def describe(request: Request) -> Response:
        obj = _obj(request)
        return JSONResponse(describe_object(ctx.crm_settings(CRM), obj, f"/services/data/v{version_of(request)}"))
    return describe


def limits_handler(ctx: SandboxContext):
    async def limits(request: Request) -> Response:
        quota = int(setting(ctx, "daily_api_requests"))
        return JSONResponse({
            "DailyApiRequests": {"Max": quota, "Remaining": max(quota - api_usage(ctx), 0)},
            "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
            "DailyBulkV2QueryFileStorageMB": {"Max": 976562, "Remaining": 976562},
        })
    return limits


async def versions(request: Request) -> Response:
    return JSONResponse([{"label": "Winter '24", "url": f"/services/data/v{API_VERSION}", "version": API_VERSION}])


# --- sObject rows ------------------------------------------------------------------------------

def sobject_root_handler(ctx: SandboxContext):
    async def sobject_root(request: Request) -> Response:
        obj = _obj(request)
        version = version_of(request)
        if request.method == "GET":
            return JSONResponse({"objectDescribe": global_entry(obj, f"/services/data/v{version}"),
                                 "recentItems": []})
        payload = await json_body(request)
        if not isinstance(payload, dict):
            raise SalesforceError(400, "JSON_PARSER_ERROR", "Cannot deserialize instance of SObject from array")
        batch = _batch(ctx, request, obj)
        try:
            planned = batch.plan_create(payload)
        except RecordError as exc:
            _count(ctx, request, 1)
            return JSONResponse(_record_errors(exc), status_code=400)
        batch.commit()
        _count(ctx, request, 1)
        return JSONResponse({"id": planned.record_id, "success": True, "errors": []}, status_code=201)
    return sobject_root


def _existing(ctx: SandboxContext, obj: str, record_id: str):
    record = ctx.store.get(CRM, obj, to_id18(record_id), include_deleted=True)
    if record is None:
        raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
    if record.is_deleted:
        raise SalesforceError(404, "ENTITY_IS_DELETED", "entity is deleted", [])
    return record


def sobject_row_handler(ctx: SandboxContext):
    async def sobject_row(request: Request) -> Response:
        obj = _obj(request)
        record = _existing(ctx, obj, request.path_params["record_id"])
        if request.method == "GET":
            fields = [f for f in request.query_params.get("fields", "").split(",") if f.strip()]
            reader = Reader(ctx, version_of(request))
            missing = [f for f in fields if reader.schemas(obj).lookup(f.strip()) is None]
            if missing:
                raise SalesforceError(400, "INVALID_FIELD", f"No such column '{missing[0]}' on sobject of type {obj}")
            _count(ctx, request, 1)
            return JSONResponse(reader.record_json(obj, record, [f.strip() for f in fields] or None))
        _count(ctx, request, 1)
        if request.method == "DELETE":
            delete(ctx, obj, record.id, request.state.request_id)
            return Response(status_code=204)
        payload = await json_body(request)
        batch = _batch(ctx, request, obj)
        try:
            batch.plan_update(record.id, payload)
        except RecordError as exc:
            return JSONResponse(_record_errors(exc), status_code=400)
        batch.commit()
        return Response(status_code=204)
    return sobject_row


def external_id_handler(ctx: SandboxContext):
    async def by_external_id(request: Request) -> Response:
        obj = _obj(request)
        version = version_of(request)
        batch = _batch(ctx, request, obj)
        f = batch.schema.lookup(request.path_params["field"])
        if f is None or not (f.external_id or f.name == "Id"):
            raise SalesforceError(404, "NOT_FOUND", "Provided external ID field does not exist or is not accessible: "
                                  + request.path_params["field"])
        value = request.path_params["value"]
        matches = [to_id18(value)] if f.name == "Id" and ctx.store.get(CRM, obj, to_id18(value)) else (
            [] if f.name == "Id" else batch.matches_external_id(f.name, value))
        if len(matches) > 1:
            return JSONResponse([f"/services/data/v{version}/sobjects/{obj}/{m}" for m in matches], status_code=300)
        _count(ctx, request, 1)
        if request.method == "GET":
            if not matches:
                raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
            return JSONResponse(Reader(ctx, version).record_json(obj, ctx.store.get(CRM, obj, matches[0])))
        if request.method == "DELETE":
            if not matches:
                raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
            delete(ctx, obj, matches[0], request.state.request_id)
            return Response(status_code=204)
        payload = await json_body(request)
        try:
            if f.name == "Id":
                planned = (batch.plan_update(matches[0], payload) if matches else batch.plan_create(payload))
            else:
                planned = batch.plan_upsert(f.name, value, payload)
        except RecordError as exc:
            return JSONResponse(_record_errors(exc), status_code=400)
        batch.commit()
        body = {"id": planned.record_id, "success": True, "errors": [], "created": planned.created}
        if planned.created:
            return JSONResponse(body, status_code=201)
        # Since API v46.0 an update by upsert answers 200 with a body; before, 204 without one.
        return JSONResponse(body, status_code=200) if float(version) >= 46 else Response(status_code=204)
    return by_external_id


# --- updated / deleted ---------------------------------------------------------------------------

def _window(request: Request) -> tuple[datetime, datetime]:
    def get(name: str) -> datetime:
        raw = request.query_params.get(name)
        value = parse_datetime(raw.replace(" ", "+")) if raw else None
        if value is None:
            raise SalesforceError(400, "MISSING_ARGUMENT" if raw is None else "INVALID_REPLICATION_DATE",
                                  f"{name} parameter is {'missing' if raw is None else 'not a valid dateTime'}")
        return value.replace(second=0, microsecond=0)  # Salesforce truncates to the minute
    start, end = get("start"), get("end")
    if end < start:
        raise SalesforceError(400, "INVALID_REPLICATION_DATE", "EndDate before StartDate")
    if start < datetime.now(timezone.utc) - timedelta(days=30):
        raise SalesforceError(400, "INVALID_REPLICATION_DATE",
                              "startDate cannot be more than 30 days ago")
    return start, end


def updated_handler(ctx: SandboxContext):
    async def updated(request: Request) -> Response:
        obj = _obj(request)
        start, end = _window(request)
        ids = [r.id for r in ctx.store.records(CRM, obj) if start <= r.modified_at < end]
        _count(ctx, request, len(ids))
        return JSONResponse({"ids": ids, "latestDateCovered": format_datetime(end)})
    return updated


def deleted_handler(ctx: SandboxContext):
    async def deleted(request: Request) -> Response:
        obj = _obj(request)
        start, end = _window(request)
        out = []
        for r in ctx.store.records(CRM, obj, include_deleted=True):
            if not r.is_deleted:
                continue
            when = next((c.at for c in reversed(r.history) if c.op == "delete"), r.modified_at)
            if start <= when < end:
                out.append({"id": r.id, "deletedDate": format_datetime(when)})
        _count(ctx, request, len(out))
        return JSONResponse({"deletedRecords": out,
                             "earliestDateAvailable": format_datetime(datetime.now(timezone.utc) - timedelta(days=15)),
                             "latestDateCovered": format_datetime(end)})
    return deleted


# --- sObject Collections -------------------------------------------------------------------------

ROLLED_BACK = {"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
               "message": "Record rolled back because not all records were valid and the request was using "
                          "AllOrNone header", "fields": []}


def _too_many(n: int) -> None:
    if n > MAX_COLLECTION:
        raise SalesforceError(400, "EXCEEDED_ID_LIMIT",
                              f"record limit reached. cannot submit more than {MAX_COLLECTION} records into this call")


def _collection_results(outcomes: list[tuple[Any, list[dict] | None]], batches: list[Batch], all_or_none: bool,
                        with_created: bool) -> list[dict[str, Any]]:
    failed = any(errors for _, errors in outcomes)
    if failed and all_or_none:
        results = []
        for planned, errors in outcomes:
            entry: dict[str, Any] = {"success": False, "errors": errors or [ROLLED_BACK]}
            if isinstance(planned, str):
                entry = {"id": planned, **entry}
            elif planned is not None and planned.op == "update":
                entry = {"id": planned.record_id, **entry}
            results.append(entry)
        return results
    for batch in batches:
        batch.commit()
    results = []
    for planned, errors in outcomes:
        if errors:
            entry = {"success": False, "errors": errors}
            if isinstance(planned, str):
                entry = {"id": planned, **entry}
        else:
            entry = {"id": planned.record_id, "success": True, "errors": []}
            if with_created:
                entry["created"] = planned.created
        results.append(entry)
    return results


def collections_handler(ctx: SandboxContext):
    async def collections(request: Request) -> Response:
        if request.method == "DELETE":
            ids = [i for i in request.query_params.get("ids", "").split(",") if i]
            _too_many(len(ids))
            all_or_none = request.query_params.get("allOrNone", "false").lower() == "true"
            _count(ctx, request, len(ids))
            return JSONResponse(_delete_many(ctx, request, ids, all_or_none))
        body = await json_body(request)
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list):
            raise SalesforceError(400, "JSON_PARSER_ERROR", "records: required field is missing")
        _too_many(len(records))
        _count(ctx, request, len(records))
        all_or_none = bool(body.get("allOrNone", False))
        batches: dict[str, Batch] = {}
        outcomes: list[tuple[Any, list[dict] | None]] = []
        for rec in records:
            obj = canonical_object(str((rec.get("attributes") or {}).get("type", ""))) if isinstance(rec, dict) else None
            if obj is None:
                outcomes.append((None, [{"statusCode": "INVALID_TYPE", "message": "Must send a concrete entity type.",
                                         "fields": []}]))
                continue
            batch = batches.setdefault(obj, _batch(ctx, request, obj))
            try:
                if request.method == "POST":
                    outcomes.append((batch.plan_create(rec), None))
                else:
                    if not rec.get("Id"):
                        outcomes.append((None, [{"statusCode": "MISSING_ARGUMENT",
                                                 "message": "Id not specified in an update call", "fields": []}]))
                        continue
                    outcomes.append((batch.plan_update(rec["Id"], rec), None))
            except RecordError as exc:
                outcomes.append((rec.get("Id"), exc.errors))
        return JSONResponse(_collection_results(outcomes, list(batches.values()), all_or_none, False))
    return collections


def _delete_many(ctx: SandboxContext, request: Request, ids: list[str], all_or_none: bool) -> list[dict[str, Any]]:
    problems: dict[str, dict] = {}
    for record_id in ids:
        full = to_id18(record_id)
        obj = OBJECT_BY_PREFIX.get(full[:3])
        record = ctx.store.get(CRM, obj, full, include_deleted=True) if obj else None
        if record is None:
            problems[record_id] = {"statusCode": "INVALID_CROSS_REFERENCE_KEY", "message": "invalid cross reference id",
                                   "fields": []}
        elif record.is_deleted:
            problems[record_id] = {"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted", "fields": []}
    if problems and all_or_none:
        return [{"id": i, "success": False, "errors": [problems.get(i, ROLLED_BACK)]} for i in ids]
    out = []
    for record_id in ids:
        if record_id in problems:
            out.append({"id": record_id, "success": False, "errors": [problems[record_id]]})
        else:
            delete(ctx, None, record_id, request.state.request_id)
            out.append({"id": to_id18(record_id), "success": True, "errors": []})
    return out


def collections_upsert_handler(ctx: SandboxContext):
    async def upsert(request: Request) -> Response:
        obj = _obj(request)
        body = await json_body(request)
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list):
            raise SalesforceError(400, "JSON_PARSER_ERROR", "records: required field is missing")
        _too_many(len(records))
        _count(ctx, request, len(records))
        batch = _batch(ctx, request, obj)
        f = batch.schema.lookup(request.path_params["field"])
        if f is None or not f.external_id:
            raise SalesforceError(400, "INVALID_FIELD", f"Field name provided, {request.path_params['field']} is not "
                                  f"an External ID or indexed field for {obj}")
        outcomes: list[tuple[Any, list[dict] | None]] = []
        for rec in records:
            value = next((v for k, v in rec.items() if k.lower() == f.name.lower()), None)
            if value in (None, ""):
                outcomes.append((None, [{"statusCode": "MISSING_ARGUMENT",
                                         "message": f"{f.name} not specified", "fields": []}]))
                continue
            try:
                outcomes.append((batch.plan_upsert(f.name, str(value), rec), None))
            except RecordError as exc:
                outcomes.append((None, exc.errors))
        all_or_none = bool(body.get("allOrNone", False))
        return JSONResponse(_collection_results(outcomes, [batch], all_or_none, True))
    return upsert


def routes(ctx: SandboxContext) -> list[Route]:
    def r(path: str, handler, methods: list[str], slash_twin: bool = True) -> list[Route]:
        wrapped = api(ctx, handler)
        out = [ctx.route(CRM, path, wrapped, methods, error_shape)]
        if slash_twin:
            twin = path[:-1] if path.endswith("/") else path + "/"
            out.append(ctx.route(CRM, twin, wrapped, methods, error_shape))
        return out

    so = V + "/sobjects/{sobject}"
    return [
        ctx.route(CRM, "/services/oauth2/token", token_handler(ctx), ["POST"], error_shape),
        ctx.route(CRM, "/services/data", versions, ["GET"], error_shape),
        *r(V + "/limits/", limits_handler(ctx), ["GET"]),
        *r(V + "/query/", query_handler(ctx, False), ["GET"]),
        *r(V + "/queryAll/", query_handler(ctx, True), ["GET"]),
        *r(V + "/query/{locator}", query_more_handler(ctx), ["GET"], False),
        *r(V + "/queryAll/{locator}", query_more_handler(ctx), ["GET"], False),
        *r(V + "/sobjects", describe_global_handler(ctx), ["GET"]),
        *r(so + "/describe", describe_handler(ctx), ["GET"]),
        *r(so + "/updated/", updated_handler(ctx), ["GET"]),
        *r(so + "/deleted/", deleted_handler(ctx), ["GET"]),
        *r(so + "/", sobject_root_handler(ctx), ["GET", "POST"]),
        *r(so + "/{record_id}", sobject_row_handler(ctx), ["GET", "PATCH", "DELETE"], False),
        *r(so + "/{field}/{value}", external_id_handler(ctx), ["GET", "PATCH", "DELETE", "POST"], False),
        *r(V + "/composite/sobjects", collections_handler(ctx), ["POST", "PATCH", "DELETE"]),
        *r(V + "/composite/sobjects/{sobject}/{field}", collections_upsert_handler(ctx), ["PATCH"], False),
    ]
