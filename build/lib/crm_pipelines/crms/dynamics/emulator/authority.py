"""A Microsoft Entra ID (Azure AD) authority for one tenant, as msal's confidential client uses it.

With ``instance_discovery=False`` msal fetches ``{authority}/v2.0/.well-known/openid-configuration``
and then posts the client-credentials grant to the ``token_endpoint`` it names, with the client
secret in the form body. Errors come back as Entra ID sends them: an OAuth error code, an
``AADSTS…`` description and ``error_codes``, which msal hands to the caller unchanged.

Access tokens are JWTs signed with a key only this process knows (HS256 rather than Entra's
RS256: nobody but the sandbox validates them), with ``aud`` = the Dataverse organisation URL.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
import uuid
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from crm_pipelines.sandbox.app import SandboxContext

from .schema import CRM
from .state import APP_USER_ID, TENANT_ID, setting, state

PREFIX = "/{tenant}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def known_tenant(ctx: SandboxContext, tenant: str) -> bool:
    return tenant.lower() in {t.lower() for t in setting(ctx, "tenants")}


def resource(ctx: SandboxContext) -> str:
    """The Dataverse organisation URL: the token audience and the scope's prefix."""
    return ctx.base_url


def authority_url(ctx: SandboxContext, tenant: str = TENANT_ID) -> str:
    return f"{ctx.base_url}/{tenant}"


def issue_token(ctx: SandboxContext, client_id: str, lifetime: int) -> str:
    now = int(time.time())
    header = {"typ": "JWT", "alg": "HS256"}
    claims = {"aud": resource(ctx), "iss": f"https://sts.windows.net/{TENANT_ID}/",
              "iat": now, "nbf": now, "exp": now + lifetime, "appid": client_id,
              "tid": TENANT_ID, "oid": APP_USER_ID, "sub": APP_USER_ID, "ver": "1.0",
              "uti": uuid.uuid4().hex}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(state(ctx).signing_key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def verify_token(ctx: SandboxContext, token: str) -> str | None:
    """None if the token is valid for this organisation now, else why not."""
    try:
        head, body, signature = token.split(".")
        expected = hmac.new(state(ctx).signing_key, f"{head}.{body}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(signature)):
            return "invalid signature"
        claims = json.loads(_unb64(body))
    except (ValueError, binascii.Error):
        return "malformed token"
    if claims.get("aud", "").rstrip("/") != resource(ctx).rstrip("/"):
        return "invalid audience"
    if claims.get("exp", 0) <= time.time():
        return "expired"
    return None


def aad_error(status: int, error: str, code: int, description: str) -> JSONResponse:
    """The token endpoint's error body: what msal returns to the caller as its result dict."""
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    return JSONResponse({
        "error": error,
        "error_description": (f"AADSTS{code}: {description} Trace ID: {trace} "
                              f"Correlation ID: {correlation} Timestamp: {stamp}"),
        "error_codes": [code],
        "timestamp": stamp,
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": f"https://login.microsoftonline.com/error?code={code}",
    }, status_code=status)


def error_shape(status: int, message: str) -> Response:
    return aad_error(status, "temporarily_unavailable" if status >= 500 else "invalid_request",
                     50196 if status == 429 else 90033, message)


def _unknown_tenant(tenant: str) -> JSONResponse:
    return aad_error(400, "invalid_tenant", 90002,
                     f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant "
                     "ID and are signing into the correct cloud.")


def routes(ctx: SandboxContext) -> list[BaseRoute]:
    async def openid_configuration(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        if not known_tenant(ctx, tenant):
            return _unknown_tenant(tenant)
        # Entra names the tenant by its GUID in the endpoints; a test that configured only
        # other tenant names gets its own name back so the token call still lands.
        base = f"{ctx.base_url}/{TENANT_ID if known_tenant(ctx, TENANT_ID) else tenant}"
        return JSONResponse({
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                      "client_secret_basic"],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "ver", "oid"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
        })

    async def keys(request: Request) -> Response:
        return JSONResponse({"keys": []})

    async def token(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        if not known_tenant(ctx, tenant):
            return _unknown_tenant(tenant)
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        client_id, secret = form.get("client_id"), form.get("client_secret")
        basic = request.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(basic[6:]).decode().partition(":")
                client_id, secret = unquote_plus(user), secret or unquote_plus(password)
            except (ValueError, binascii.Error):
                pass
        grant = form.get("grant_type")
        scope = str(form.get("scope") or "")
        if grant != "client_credentials":
            return aad_error(400, "unsupported_grant_type", 70003,
                             f"The app requested an unsupported grant type '{grant}'.")
        if client_id != setting(ctx, "client_id"):
            return aad_error(400, "unauthorized_client", 700016,
                             f"Application with identifier '{client_id}' was not found in the "
                             f"directory '{tenant}'. This can happen if the application has not "
                             "been installed by the administrator of the tenant or consented to by "
                             "any user in the tenant. You may have sent your authentication request "
                             "to the wrong tenant.")
        if not secret:
            return aad_error(401, "invalid_client", 7000216,
                             "'client_assertion', 'client_secret' or 'request' is required for the "
                             "'client_credentials' grant type.")
        if setting(ctx, "app_disabled"):
            return aad_error(400, "unauthorized_client", 7000112,
                             f"Application '{client_id}'(crm-pipelines) is disabled.")
        if secret != setting(ctx, "client_secret"):
            return aad_error(401, "invalid_client", 7000215,
                             "Invalid client secret provided. Ensure the secret being sent in the "
                             "request is the client secret value, not the client secret ID, for a "
                             f"secret added to app '{client_id}'.")
        if setting(ctx, "client_secret_expired"):
            return aad_error(401, "invalid_client", 7000222,
                             f"The provided client secret keys for app '{client_id}' are expired. "
                             "Visit the Azure portal to create new keys for your app.")
        if setting(ctx, "grant_revoked"):
            return aad_error(400, "invalid_grant", 65001,
                             f"The user or administrator has not consented to use the application "
                             f"with ID '{client_id}' named 'crm-pipelines'. Send an interactive "
                             "authorization request for this user and resource.")
        scopes = scope.split()
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            return aad_error(400, "invalid_scope", 1002012,
                             f"The provided value for scope {scope} is not valid. Client credential "
                             "flows must have a scope value with /.default suffixed to the resource "
                             "identifier (application ID URI).")
        if scopes[0][: -len("/.default")].rstrip("/") != resource(ctx).rstrip("/"):
            return aad_error(400, "invalid_resource", 500011,
                             f"The resource principal named {scopes[0][:-len('/.default')]} was not "
                             f"found in the tenant named {tenant}. This can happen if the "
                             "application has not been installed by the administrator of the tenant.")
        lifetime = int(setting(ctx, "token_lifetime_seconds"))
        body: dict[str, Any] = {"token_type": "Bearer", "expires_in": lifetime,
                                "ext_expires_in": lifetime,
                                "access_token": issue_token(ctx, str(client_id), lifetime)}
        return JSONResponse(body, headers={"Cache-Control": "no-store, no-cache",
                                           "Pragma": "no-cache"})

    return [
        ctx.route(CRM, f"{PREFIX}/v2.0/.well-known/openid-configuration", openid_configuration,
                  ["GET"], error_shape),
        ctx.route(CRM, f"{PREFIX}/discovery/v2.0/keys", keys, ["GET"], error_shape),
        ctx.route(CRM, f"{PREFIX}/oauth2/v2.0/token", token, ["POST"], error_shape),
    ]
