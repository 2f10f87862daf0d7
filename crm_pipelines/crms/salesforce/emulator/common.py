"""What every Salesforce endpoint shares: settings, sessions, error bodies, the API quota.

Settings (``ctx.crm_settings("salesforce")`` or PATCH /_sandbox/settings/salesforce; defaults in
DEFAULTS): client_id "sandbox-client", client_secret "sandbox-secret", username
"integration@enginy-customer.com", password "sandbox-password" (the accepted credentials);
session_seconds (7200, a session's lifetime); daily_api_requests (100000, the quota behind
Sforce-Limit-Info and REQUEST_LIMIT_EXCEEDED); max_uri_bytes (16384, past it 414);
duplicate_rules and validation_rules (see writes); bulk_polls_in_progress (0, see bulk);
bulk_pk_chunk_size (100000) and bulk_unchunked_row_limit (10000), see chunking; custom_fields
(managed by add_custom_field).
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from crm_pipelines.sandbox.app import SandboxContext
from crm_pipelines.crms.salesforce.emulator.schema import CRM, INTEGRATION_USER_ID, ORG_ID, ObjectSchema, schema_for

DEFAULTS: dict[str, Any] = {
    "client_id": "sandbox-client",
    "client_secret": "sandbox-secret",
    "username": "integration@enginy-customer.com",
    "password": "sandbox-password",
    "session_seconds": 7200,
    "daily_api_requests": 100_000,
    "max_uri_bytes": 16_384,
    "duplicate_rules": {"Contact": True, "Lead": True},
    "validation_rules": [],
    "bulk_polls_in_progress": 0,
    # Bulk API 1.0's PK chunking default; Bulk API 2.0 picks its own size and does not say which.
    "bulk_pk_chunk_size": 100_000,
    "bulk_unchunked_row_limit": 10_000,
}
TOKEN_PATH = "/services/oauth2/token"
logger = logging.getLogger(__name__)


def setting(ctx: SandboxContext, key: str) -> Any:
    return ctx.crm_settings(CRM).get(key, DEFAULTS.get(key))


def schema(ctx: SandboxContext, obj: str) -> ObjectSchema:
    return schema_for(ctx.crm_settings(CRM), obj)


@dataclass
class SalesforceState:
    """Process state that must not live in JSON settings: sessions, query cursors, bulk jobs."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    sessions: dict[str, float] = field(default_factory=dict)  # token → issued at (epoch seconds)
    cursors: dict[str, dict[str, Any]] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)


def state(ctx: SandboxContext) -> SalesforceState:
    return ctx.state_of("salesforce", SalesforceState)


def new_session(ctx: SandboxContext) -> str:
    token = f"{ORG_ID[:15]}!AQ" + secrets.token_urlsafe(72)
    with state(ctx).lock:
        state(ctx).sessions[token] = time.time()
    return token




class SalesforceError(Exception):
    """An error answered in REST's shape: [{"message": ..., "errorCode": ..., "fields": [...]}]."""

    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.fields, self.extra = fields, extra or {}

    def body(self) -> list[dict[str, Any]]:
        entry: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields is not None:
            entry["fields"] = self.fields
        entry.update(self.extra)
        return [entry]


def error_response(status: int, code: str, message: str) -> Response:
    return JSONResponse([{"message": message, "errorCode": code}], status_code=status)


def error_shape(status: int, message: str) -> Response:
    """Injected faults as Salesforce answers them."""
    if status == 429 or status == 403:
        return error_response(status, "REQUEST_LIMIT_EXCEEDED", f"ConcurrentPerOrgLongTxn Limit exceeded. {message}")
    if status == 503:
        return error_response(status, "SERVER_UNAVAILABLE", f"Server temporarily unavailable: {message}")
    if status == 401:
        return error_response(status, "INVALID_SESSION_ID", "Session expired or invalid")
    if status >= 500:
        return error_response(
            status, "UNKNOWN_EXCEPTION",
            f"An unexpected error occurred. Please include this ErrorId if you contact support: "
            f"{secrets.randbelow(10**9)}-{secrets.randbelow(10**5)} ({message})")
    return error_response(status, "BAD_REQUEST", message)


def api_usage(ctx: SandboxContext) -> int:
    """Calls counted today: every Salesforce call but the OAuth ones, as the org's quota counts."""
    return sum(row["count"] for row in ctx.stats.as_json()["calls"]
               if row["crm"] == CRM and not row["endpoint"].startswith("/services/oauth2"))


Handler = Callable[[Request], Awaitable[Response]]


def api(ctx: SandboxContext, handler: Handler) -> Handler:
    """Wrap a REST/Bulk handler: URI length, session, daily quota, error bodies, Sforce-Limit-Info."""

    async def wrapped(request: Request) -> Response:
        used = api_usage(ctx)
        quota = int(setting(ctx, "daily_api_requests"))
        try:
            raw = request.scope.get("raw_path", b"") + b"?" + request.scope.get("query_string", b"")
            if len(raw) > int(setting(ctx, "max_uri_bytes")):
                return Response("<html><body><h1>414 Request-URI Too Long</h1></body></html>", status_code=414,
                                media_type="text/html")
            check_session(ctx, request)
            if used > quota:
                raise SalesforceError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            response = await handler(request)
        except SalesforceError as exc:
            response = JSONResponse(exc.body(), status_code=exc.status)
        except Exception as exc:  # a sandbox bug: answer it as Salesforce answers its own, and log it
            logger.exception("sandbox Salesforce handler failed")
            response = error_response(500, "UNKNOWN_EXCEPTION", f"An unexpected error occurred: {exc!r}")
        response.headers["Sforce-Limit-Info"] = f"api-usage={min(used, quota)}/{quota}"
        return response

    return wrapped


def check_session(ctx: SandboxContext, request: Request) -> None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    issued = None
    if scheme.lower() in ("bearer", "oauth") and token:
        with state(ctx).lock:
            issued = state(ctx).sessions.get(token.strip())
    if issued is None or time.time() - issued > float(setting(ctx, "session_seconds")):
        raise SalesforceError(401, "INVALID_SESSION_ID", "Session expired or invalid")
    ensure_integration_user(ctx)


def ensure_integration_user(ctx: SandboxContext) -> None:
    """The org always has the integration user the API calls run as (the default OwnerId)."""
    with ctx.store.lock:
        if ctx.store.get(CRM, "User", INTEGRATION_USER_ID, include_deleted=True) is None:
            username = str(setting(ctx, "username"))
            ctx.store.create(CRM, "User", INTEGRATION_USER_ID, {
                "FirstName": "Integration", "LastName": "User", "Username": username, "Email": username,
                "Alias": "integ", "IsActive": True})


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise SalesforceError(400, "JSON_PARSER_ERROR", "The request body is either invalid or incomplete.")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise SalesforceError(400, "JSON_PARSER_ERROR", f"Unexpected character: {exc}") from None


def version_of(request: Request) -> str:
    return request.path_params.get("version", "v59.0").lstrip("v")
