"""The Dataverse Web API v9.2 subset the pipeline uses, at ``/api/data/v9.2``.

Every operation is a ``Call`` → ``Answer`` function so that a plain HTTP request and an
operation inside a ``$batch`` run the same code. Routes are registered per entity set, so call
counts and fault rules can name one table's endpoint by its template:
``/api/data/v9.2/contacts`` (GET query, POST create) and ``/api/data/v9.2/contacts({key:path})``
(GET, PATCH update/upsert, DELETE), likewise for accounts, leads, systemusers and tasks; plus
``/api/data/v9.2/$batch``, ``/api/data/v9.2/WhoAmI`` and ``/api/data/v9.2/EntityDefinitions({key})…``.

Before any operation runs, ``gate`` checks what Dataverse checks first: the URL length, the
bearer token, and the service protection limit.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import math
import re
from typing import Any
from urllib.parse import parse_qsl, quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from crm_pipelines.sandbox.app import SandboxContext

from . import records
from .authority import TENANT_ID, verify_token
from .batch import execute_batch
from .calls import API, ODATA_HEADERS, Answer, Call, api_url
from .metadata import entity_definitions
from crm_pipelines.sandbox.odata import (
    QueryError, compile_filter, parse_key, parse_orderby, parse_select, rows_after, sort_rows,
)
from .records import BAD_QUERY, NOT_FOUND, Data, ODataError, not_found
from .schema import BY_ENTITY_SET, CRM, TABLES, Table, table as table_with_custom
from .state import APP_USER_ID, BUSINESS_UNIT_ID, ORGANIZATION_ID, setting, state
from .tracking import issue_token, token_version, tracked

THROTTLED = "0x80072322"
COUNT_LIMIT = 5000


def entity_url(ctx: SandboxContext, table: Table, record_id: str) -> str:
    return f"{api_url(ctx)}/{table.entity_set}({record_id})"


def split_segment(path: str) -> tuple[str, str | None, str]:
    """``contacts(crm_enginyid='a)b')/rest`` → ("contacts", "crm_enginyid='a)b'", "rest")."""
    open_at = path.find("(")
    slash_at = path.find("/")
    if open_at < 0 or (0 <= slash_at < open_at):
        name, _, rest = path.partition("/")
        return name, None, rest
    quoted, depth = False, 0
    for i in range(open_at, len(path)):
        c = path[i]
        if c == "'":
            quoted = not quoted
        elif not quoted and c == "(":
            depth += 1
        elif not quoted and c == ")":
            depth -= 1
            if depth == 0:
                rest = path[i + 1:]
                if rest and not rest.startswith("/"):
                    break
                return path[:open_at], path[open_at + 1:i], rest[1:]
    raise ODataError(400, BAD_QUERY, f"Bad request URL segment '{path}'.")


def dispatch(ctx: SandboxContext, data: Data, call: Call) -> Answer:
    """Route one Web API operation; raises ODataError for the error answers."""
    name, key, rest = split_segment(call.path)
    if name in ("WhoAmI", "WhoAmI()") and call.method == "GET":
        return Answer(200, {"@odata.context": f"{api_url(ctx)}/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
                            "BusinessUnitId": BUSINESS_UNIT_ID, "UserId": APP_USER_ID,
                            "OrganizationId": ORGANIZATION_ID})
    if name == "EntityDefinitions" and call.method == "GET" and key is not None:
        return entity_definitions(ctx, call, key, rest)
    if name not in BY_ENTITY_SET:
        raise ODataError(404, "0x8006088a", f"Resource not found for the segment '{name}'.")
    table = table_with_custom(ctx.crm_settings(CRM), BY_ENTITY_SET[name].logical_name)
    if rest:
        raise ODataError(404, "0x8006088a", f"Resource not found for the segment '{rest}'.")
    if key is None:
        if call.method == "GET":
            return query(ctx, data, table, call)
        if call.method == "POST":
            return create(ctx, data, table, call)
    else:
        try:
            parsed = parse_key(key)
        except QueryError as exc:
            raise ODataError(400, BAD_QUERY, str(exc)) from None
        if call.method == "GET":
            return retrieve(ctx, data, table, parsed, call)
        if call.method == "PATCH":
            return upsert(ctx, data, table, parsed, call)
        if call.method == "DELETE":
            return remove(ctx, data, table, parsed, call)
    raise ODataError(405, "0x80060888", f"The HTTP method '{call.method}' is not allowed on '{call.path}'.")


# ---------------------------------------------------------------------------------------------
# Reads

def _check_names(table: Table, names: list[str], option: str) -> None:
    for name in names:
        if name not in table.by_wire:
            raise ODataError(400, BAD_QUERY,
                             f"Could not find a property named '{name}' on type "
                             f"'Microsoft.Dynamics.CRM.{table.logical_name}'.")


FORMATTED = "OData.Community.Display.V1.FormattedValue"
LOOKUP_TABLE = "Microsoft.Dynamics.CRM.lookuplogicalname"
APP_USER_NAME = "# crm-pipelines"


def annotations_wanted(call: Call, headers: dict[str, str]) -> set[str]:
    """The instance annotations ``Prefer: odata.include-annotations`` asks for."""
    asked = call.prefer().get("odata.include-annotations")
    if not asked:
        return set()
    names = {n.strip() for n in asked.split(",")}
    wanted = {FORMATTED, LOOKUP_TABLE} if "*" in names else names & {FORMATTED, LOOKUP_TABLE}
    if wanted:
        headers["Preference-Applied"] = ", ".join(
            p for p in (headers.get("Preference-Applied"), f'odata.include-annotations="{asked}"') if p)
    return wanted


def _annotate(data: Data, table: Table, fields: records.Fields, row: dict[str, Any],
              wanted: set[str]) -> None:
    for name in [n for n in row if n in table.by_wire]:
        attr, value = table.by_wire[name], row[name]
        if value is None:
            continue
        if attr.options and FORMATTED in wanted:
            row[f"{name}@{FORMATTED}"] = dict(attr.options).get(value, str(value))
        if attr.is_lookup:
            target = fields.get("_lookup_types", {}).get(attr.name) or attr.targets[0][0]
            if LOOKUP_TABLE in wanted:
                row[f"{name}@{LOOKUP_TABLE}"] = target
            if FORMATTED in wanted:
                target_table = TABLES[target]
                other = data.get(target_table.entity_set, value) or {}
                row[f"{name}@{FORMATTED}"] = (APP_USER_NAME if value == APP_USER_ID
                                             else other.get(target_table.primary_name))


Expand = list[tuple[str, list[str] | None]]
_EXPAND_ITEM = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\(([^)]*)\))?\s*(?:,|$)")


def parse_expand(ctx: SandboxContext, table: Table, text: str | None) -> Expand:
    """``parentcustomerid_account($select=name)`` → [(navigation property, its $select)].

    Only single-valued navigation properties (the lookups) can be expanded here.
    """
    items: Expand = []
    position = 0
    while text and position < len(text):
        match = _EXPAND_ITEM.match(text, position)
        if not match or match.end() == position:
            raise ODataError(400, BAD_QUERY, f"Syntax error in $expand '{text}'.")
        nav, options = match.group(1), match.group(2) or ""
        if nav not in table.navigation:
            raise ODataError(400, BAD_QUERY, f"Could not find a property named '{nav}' on type "
                                             f"'Microsoft.Dynamics.CRM.{table.logical_name}'.")
        select = None
        for option in options.split(";"):
            name, _, value = option.partition("=")
            if name.strip() == "$select":
                select = parse_select(value)
                target = table_with_custom(ctx.crm_settings(CRM), table.navigation[nav][1])
                _check_names(target, select or [], "$select")
        items.append((nav, select))
        position = match.end()
    return items


def project(table: Table, fields: records.Fields, select: list[str] | None,
            data: Data | None = None, wanted: set[str] | frozenset[str] = frozenset(),
            expand: Expand = ()) -> dict[str, Any]:
    names = select if select is not None else list(table.by_wire)
    row: dict[str, Any] = {"@odata.etag": f'W/"{fields.get("versionnumber", 0)}"'}
    for name in names:
        row[name] = fields.get(name)
    row[table.primary_id] = fields.get(table.primary_id)
    if wanted and data is not None:
        _annotate(data, table, fields, row, set(wanted))
    for nav, nav_select in expand if data is not None else ():
        attr, target = table.navigation[nav]
        target_id = fields.get(attr.wire_name)
        bound_to = fields.get("_lookup_types", {}).get(attr.name) or attr.targets[0][0]
        target_table = table_with_custom(data.ctx.crm_settings(CRM), target)
        other = data.get(target_table.entity_set, target_id) if target_id and bound_to == target else None
        row[nav] = None if other is None else project(target_table, other, nav_select)
    return row


def _context(ctx: SandboxContext, table: Table, select: list[str] | None, suffix: str = "") -> str:
    columns = f"({','.join(select)})" if select else ""
    return f"{api_url(ctx)}/$metadata#{table.entity_set}{columns}{suffix}"


def _page_size(ctx: SandboxContext, call: Call, headers: dict[str, str]) -> int:
    cap = int(setting(ctx, "max_page_size"))
    preferred = call.prefer().get("odata.maxpagesize")
    if preferred is None:
        return cap
    try:
        size = max(1, min(int(preferred), cap))
    except ValueError:
        return cap
    headers["Preference-Applied"] = f"odata.maxpagesize={size}"
    return size


def _cookie(state_doc: dict[str, Any], page: int) -> str:
    inner = base64.urlsafe_b64encode(json.dumps(state_doc).encode()).decode()
    return f'<cookie pagenumber="{page}" pagingcookie="{inner}" istracking="False" />'


def _read_cookie(text: str) -> tuple[dict[str, Any], int]:
    match = re.search(r'pagenumber="(\d+)"\s+pagingcookie="([^"]*)"', text)
    if not match:
        raise ODataError(400, BAD_QUERY, "The $skiptoken is not valid.")
    try:
        return json.loads(base64.urlsafe_b64decode(match.group(2))), int(match.group(1))
    except (ValueError, binascii.Error):
        raise ODataError(400, BAD_QUERY, "The $skiptoken is not valid.") from None


def _link(ctx: SandboxContext, table: Table, params: dict[str, str]) -> str:
    encoded = "&".join(f"{quote(k, safe='$')}={quote(v, safe='')}" for k, v in params.items())
    return f"{api_url(ctx)}/{table.entity_set}?{encoded}"


def query(ctx: SandboxContext, data: Data, table: Table, call: Call) -> Answer:
    q = call.query
    select = parse_select(q.get("$select"))
    if select is not None:
        _check_names(table, select, "$select")
    # A table without Track changes ignores the preference: its rows come without a delta link.
    tracking = "$deltatoken" in q or ("odata.track-changes" in call.prefer()
                                      and tracked(ctx, table.logical_name))
    if tracking:
        for option in ("$filter", "$orderby", "$top", "$count", "$expand"):
            if option in q:
                raise ODataError(400, BAD_QUERY,
                                 f"The query option {option} is not supported with change tracking.")
    if "$deltatoken" in q:
        return delta(ctx, data, table, call, select)
    try:
        predicate = (compile_filter(q["$filter"], lambda n: n in table.by_wire, table.logical_name)
                     if q.get("$filter") else None)
        orderby = parse_orderby(q.get("$orderby"))
    except QueryError as exc:
        raise ODataError(400, BAD_QUERY, str(exc)) from None
    _check_names(table, [name for name, _ in orderby], "$orderby")
    orderby = orderby + [(table.primary_id, False)]
    try:
        top = int(q["$top"]) if q.get("$top") else None
    except ValueError:
        raise ODataError(400, BAD_QUERY, f"Invalid $top '{q['$top']}'.") from None
    headers = dict(ODATA_HEADERS)
    size = _page_size(ctx, call, headers)

    def answer() -> list[records.Fields]:
        rows = data.rows(table.entity_set)
        if predicate is not None:
            rows = [r for r in rows if predicate(r)]
        return sort_rows(rows, orderby)[:top]

    rows = data.answer(table.entity_set, f"query {q.get('$filter')} {orderby} {top}", answer)
    total, start = len(rows), 0
    page_no, track_version = 1, None
    if q.get("$skiptoken"):
        doc, page_no = _read_cookie(q["$skiptoken"])
        track_version = doc.get("track")
        tracking = tracking or track_version is not None  # a tracked pull's later pages
        start = rows_after(rows, orderby, doc.get("last"))
    if tracking and track_version is None:
        track_version = state(ctx).current_version()
    page = rows[start:start + size]
    body: dict[str, Any] = {"@odata.context": _context(ctx, table, select)}
    if q.get("$count", "").lower() == "true":
        body["@odata.count"] = min(total, COUNT_LIMIT)
    wanted = annotations_wanted(call, headers)
    expand = parse_expand(ctx, table, q.get("$expand"))
    body["value"] = [project(table, r, select, data, wanted, expand) for r in page]
    if total - start > size:
        last = {name: page[-1].get(name) for name, _ in orderby}
        params = {k: v for k, v in q.items() if k != "$skiptoken"}
        params["$skiptoken"] = _cookie({"last": last, "track": track_version}, page_no + 1)
        body["@odata.nextLink"] = _link(ctx, table, params)
    elif tracking:
        params = {k: v for k, v in q.items() if k not in ("$skiptoken",)}
        params["$deltatoken"] = issue_token(track_version)
        body["@odata.deltaLink"] = _link(ctx, table, params)
    return Answer(200, body, headers, records=len(page))


def delta(ctx: SandboxContext, data: Data, table: Table, call: Call,
          select: list[str] | None) -> Answer:
    """Rows changed since the token, and ``$deletedEntity`` entries for rows deleted since."""
    q = call.query
    since = token_version(ctx, table.logical_name, q["$deltatoken"])
    headers = dict(ODATA_HEADERS)
    size = _page_size(ctx, call, headers)
    after, until = since, None
    if q.get("$skiptoken"):
        doc, _ = _read_cookie(q["$skiptoken"])
        after, until = doc["after"], doc["until"]
    if until is None:
        until = state(ctx).current_version()
    wanted = annotations_wanted(call, headers)

    def changes() -> list[tuple[int, str | records.Fields]]:
        """Versions since the token up to ``until``, in order: a changed row, or a deleted row's id."""
        found: list[tuple[int, str | records.Fields]] = [
            (row.get("versionnumber") or 0, row) for row in data.rows(table.entity_set)
            if since < (row.get("versionnumber") or 0) <= until]
        for (entity_set, record_id), version in list(state(ctx).deleted.items()):
            if entity_set != table.entity_set or not since < version <= until:
                continue
            record = ctx.store.get(CRM, entity_set, record_id, include_deleted=True)
            if record is not None and record.is_deleted:
                found.append((version, record_id))
        return sorted(found, key=lambda c: c[0])

    # The pages share one list of the changes since the token (the store keeps it while no write comes).
    found = data.answer(table.entity_set, f"delta {since} {until}", changes)
    start = bisect.bisect_right(found, after, key=lambda c: c[0])
    page = found[start:start + size]
    deleted_context = f"{api_url(ctx)}/$metadata#{table.entity_set}/$deletedEntity"
    body: dict[str, Any] = {"@odata.context": _context(ctx, table, select, "/$delta"), "value": [
        {"@odata.context": deleted_context, "id": change, "reason": "deleted"} if isinstance(change, str)
        else project(table, change, select, data, wanted) for _, change in page]}
    params = {k: v for k, v in q.items() if k not in ("$skiptoken", "$deltatoken")}
    if len(found) - start > size:
        params["$deltatoken"] = q["$deltatoken"]
        params["$skiptoken"] = _cookie({"after": page[-1][0], "until": until}, 2)
        body["@odata.nextLink"] = _link(ctx, table, params)
    else:
        params["$deltatoken"] = issue_token(until)
        body["@odata.deltaLink"] = _link(ctx, table, params)
    return Answer(200, body, headers, records=len(page))


def _resolve(data: Data, table: Table, key: str | dict[str, Any]) -> str | None:
    if isinstance(key, str):
        return key if data.get(table.entity_set, key) is not None else None
    unknown = [k for k in key if k not in table.alternate_keys and k != table.primary_id]
    if unknown:
        raise ODataError(400, BAD_QUERY,
                         f"The key attribute '{unknown[0]}' is not an alternate key of "
                         f"{table.logical_name}.")
    if table.primary_id in key:
        return _resolve(data, table, str(key[table.primary_id]))
    return data.find_by_key(table, key)


def _missing(table: Table, key: str | dict[str, Any]) -> ODataError:
    if isinstance(key, str):
        return not_found(table, key)
    return ODataError(404, NOT_FOUND, "A record with the specified key values does not exist in "
                                      f"{table.logical_name} entity")


def retrieve(ctx: SandboxContext, data: Data, table: Table, key: str | dict[str, Any],
             call: Call) -> Answer:
    record_id = _resolve(data, table, key)
    if record_id is None:
        raise _missing(table, key)
    select = parse_select(call.query.get("$select"))
    if select is not None:
        _check_names(table, select, "$select")
    headers = dict(ODATA_HEADERS)
    wanted = annotations_wanted(call, headers)
    expand = parse_expand(ctx, table, call.query.get("$expand"))
    body = {"@odata.context": _context(ctx, table, select, "/$entity"),
            **project(table, data.get(table.entity_set, record_id) or {}, select, data, wanted, expand)}
    return Answer(200, body, headers, records=1)


# ---------------------------------------------------------------------------------------------
# Writes

def _written(ctx: SandboxContext, data: Data, table: Table, record_id: str, call: Call,
             created: bool) -> Answer:
    url = entity_url(ctx, table, record_id)
    headers = {**ODATA_HEADERS, "OData-EntityId": url}
    if call.prefer().get("return") == "representation":
        select = parse_select(call.query.get("$select"))
        body = {"@odata.context": _context(ctx, table, select, "/$entity"),
                **project(table, data.get(table.entity_set, record_id) or {}, select)}
        headers["Preference-Applied"] = "return=representation"
        return Answer(201 if created else 200, body, headers, records=1, location=url)
    return Answer(204, None, headers, records=1, location=url)


def create(ctx: SandboxContext, data: Data, table: Table, call: Call) -> Answer:
    payload = call.json()
    fields = records.prepare(data, table, payload, True, api_url(ctx), call.content_ids)
    record_id = records.create(data, table, fields, request_id=call.request_id)
    return _written(ctx, data, table, record_id, call, created=True)


def upsert(ctx: SandboxContext, data: Data, table: Table, key: str | dict[str, Any],
           call: Call) -> Answer:
    """PATCH: update, or create when nothing matches (an upsert) unless If-Match forbids it."""
    record_id = _resolve(data, table, key)
    if_match, if_none_match = call.headers.get("if-match"), call.headers.get("if-none-match")
    payload = call.json()
    if record_id is None:
        if if_match is not None:
            raise _missing(table, key)
        fields = records.prepare(data, table, payload, True, api_url(ctx), call.content_ids)
        if isinstance(key, dict):
            fields.update(key)  # the alternate key values become the new row's values
        new_id = records.create(data, table, fields, key if isinstance(key, str) else None,
                                request_id=call.request_id)
        return _written(ctx, data, table, new_id, call, created=True)
    if if_none_match == "*":
        raise ODataError(412, records.DUPLICATE_KEY, "A record with matching key values already exists.")
    current = data.get(table.entity_set, record_id) or {}
    if if_match not in (None, "*") and if_match != f'W/"{current.get("versionnumber", 0)}"':
        raise ODataError(412, records.VERSION_MISMATCH,
                         "The version of the existing record doesn't match the RowVersion property "
                         "provided.")
    fields = records.prepare(data, table, payload, False, api_url(ctx), call.content_ids, current)
    records.update(data, table, record_id, fields, request_id=call.request_id)
    return _written(ctx, data, table, record_id, call, created=False)


def remove(ctx: SandboxContext, data: Data, table: Table, key: str | dict[str, Any],
           call: Call) -> Answer:
    record_id = _resolve(data, table, key)
    if record_id is None:
        raise _missing(table, key)
    records.delete(data, table, record_id, request_id=call.request_id)
    return Answer(204, None, dict(ODATA_HEADERS), records=1)


# ---------------------------------------------------------------------------------------------
# HTTP

def error_shape(status: int, message: str) -> Response:
    code = {429: THROTTLED, 404: NOT_FOUND, 401: "0x80040220"}.get(status, "0x80040216")
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status,
                        headers=ODATA_HEADERS)


def to_response(answer: Answer) -> Response:
    if answer.body is None:
        return Response(status_code=answer.status, headers=answer.headers)
    return JSONResponse(answer.body, status_code=answer.status,
                        headers={**answer.headers,
                                 "Content-Type": "application/json; odata.metadata=minimal"})


def error_response(error: ODataError) -> Response:
    return JSONResponse(error.body(), status_code=error.status,
                        headers={**ODATA_HEADERS, **error.headers})


def gate(ctx: SandboxContext, request: Request) -> Response | None:
    """What Dataverse checks before running anything: URL length, the token, the limits."""
    if len(str(request.url)) > int(setting(ctx, "max_url_length")):
        return error_response(ODataError(414, BAD_QUERY,
                                         "The request URL is too long. Split the $select or "
                                         "$filter, or send the query inside a $batch request."))
    authorization = request.headers.get("authorization", "")
    challenge = (f'Bearer authorization_uri={ctx.base_url}/{TENANT_ID}/oauth2/authorize, '
                 f'resource_id={ctx.base_url}')
    if not authorization.lower().startswith("bearer "):
        return Response(status_code=401, headers={"WWW-Authenticate": challenge})
    problem = verify_token(ctx, authorization[7:].strip())
    if problem is not None:
        return Response(status_code=401, headers={"WWW-Authenticate": (
            f'Bearer error=invalid_token, error_description="Error identified in Payload provided '
            f'by the user for Authentication ({problem})", authorization_uri={ctx.base_url}/'
            f'{TENANT_ID}/oauth2/authorize, resource_id={ctx.base_url}')})
    window = float(setting(ctx, "service_protection_window_seconds"))
    limit = setting(ctx, "service_protection_requests")
    wait = state(ctx).admit(ctx.crm_settings(CRM), None if limit is None else int(limit), window)
    if wait is not None:
        return error_response(ODataError(
            429, THROTTLED,
            f"Number of requests exceeded the limit of {limit} over time window of "
            f"{int(window)} seconds.", {"Retry-After": str(max(1, math.ceil(wait)))}))
    return None


def call_from(request: Request, body: bytes) -> Call:
    path = request.scope["path"][len(API) + 1:]
    query = dict(parse_qsl(request.url.query, keep_blank_values=True))
    headers = {k.lower(): v for k, v in request.headers.items()}
    return Call(request.method, path, query, headers, body, request_id=request.state.request_id)


def routes(ctx: SandboxContext) -> list[BaseRoute]:
    async def serve(request: Request) -> Response:
        blocked = gate(ctx, request)
        if blocked is not None:
            return blocked
        body = await request.body()
        call = call_from(request, body)
        try:
            if call.path == "$batch" and call.method == "POST":
                response, count = execute_batch(ctx, call, dispatch)
            else:
                answer = dispatch(ctx, Data(ctx), call)
                response, count = to_response(answer), answer.records
        except ODataError as error:
            return error_response(error)
        if count:
            ctx.stats.count_records(CRM, request.method, request.state.endpoint, count)
        return response

    table_routes = []
    for entity_set in BY_ENTITY_SET:
        table_routes.append(ctx.route(CRM, f"{API}/{entity_set}", serve, ["GET", "POST"], error_shape))
        table_routes.append(ctx.route(CRM, f"{API}/{entity_set}({{key:path}})", serve,
                                      ["GET", "PATCH", "DELETE"], error_shape))
    definitions = f"{API}/EntityDefinitions({{key}})"
    return [
        ctx.route(CRM, f"{API}/$batch", serve, ["POST"], error_shape),
        ctx.route(CRM, f"{API}/WhoAmI", serve, ["GET"], error_shape),
        ctx.route(CRM, definitions, serve, ["GET"], error_shape),
        ctx.route(CRM, f"{definitions}/Attributes", serve, ["GET"], error_shape),
        ctx.route(CRM, f"{definitions}/Attributes/{{cast}}", serve, ["GET"], error_shape),
        ctx.route(CRM, f"{definitions}/Keys", serve, ["GET"], error_shape),
        *table_routes,
        # Anything else under the API answers as Dataverse does, with an OData error.
        ctx.route(CRM, f"{API}/{{rest:path}}", serve,
                  ["GET", "POST", "PATCH", "PUT", "DELETE"], error_shape),
    ]
