"""Microsoft Dynamics 365 (Dataverse) in the sandbox: an Entra ID authority and the Web API.

A connector authenticates with msal exactly as against Microsoft::

    app = msal.ConfidentialClientApplication(
        "sandbox-client-id", client_credential="sandbox-client-secret",
        authority=f"{base_url}/sandbox-tenant", instance_discovery=False)
    token = app.acquire_token_for_client([f"{base_url}/.default"])["access_token"]

and calls ``{base_url}/api/data/v9.2/…`` with ``Authorization: Bearer {token}``; the
organisation URL (the token's resource) is the sandbox's base URL.

- ``authority``: openid-configuration and the token endpoint under ``/{tenant}/…``
- ``webapi``: entity sets, queries, writes, change tracking, EntityDefinitions metadata
- ``batch``: ``$batch`` with change sets
- ``odata``: the $filter grammar and other query options
- ``schema``: tables and attributes; ``records``: rows and write rules; ``state``: settings
- ``tracking``: change tracking per table, and delta tokens that expire
"""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute

from crm_pipelines.sandbox.app import SandboxContext
from crm_pipelines.enginy.crm_side import SeedData

from . import authority, webapi
from . import schema
from .schema import CRM, ENGINY_KEY
from .seeding import seed_tables
from .state import CLIENT_ID, CLIENT_SECRET, TENANT_ID, TENANT_NAME
from .tracking import expire_delta_tokens

__all__ = ["CRM", "CLIENT_ID", "CLIENT_SECRET", "ENGINY_KEY", "TENANT_ID", "TENANT_NAME",
           "add_custom_attributes", "expire_delta_tokens", "routes", "seed"]


def routes(ctx: SandboxContext) -> list[BaseRoute]:
    return authority.routes(ctx) + webapi.routes(ctx)


def add_custom_attributes(ctx: SandboxContext, logical_name: str,
                          attributes: list[dict[str, Any]]) -> None:
    """Add custom columns to a table at run time, e.g.
    ``[{"LogicalName": "crm_score", "AttributeType": "Integer"}]`` (see ``schema.custom_attribute``)."""
    schema.add_custom_attributes(ctx.crm_settings(CRM), logical_name, attributes)


def seed(ctx: SandboxContext, seed: SeedData) -> None:
    """Load the generator's CRM side as systemusers, accounts, contacts and leads."""
    seed_tables(ctx, seed)


def client_environment(sandbox) -> dict[str, str]:
    """The variables (crms/dynamics/facts.py) that point the Dynamics resource at the sandbox: the
    sandbox is both the Dataverse environment and its Entra ID authority."""
    return {"DYNAMICS_ENVIRONMENT_URL": sandbox.base_url, "DYNAMICS_AUTHORITY_HOST": sandbox.base_url,
            "DYNAMICS_TENANT_ID": TENANT_NAME, "DYNAMICS_CLIENT_ID": CLIENT_ID, "DYNAMICS_CLIENT_SECRET": CLIENT_SECRET}
