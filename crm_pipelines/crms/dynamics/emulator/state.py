"""What the Dynamics emulation keeps beside the store, and the settings it reads.

Settings (``ctx.settings["dynamics"]``, changeable through ``PATCH /_sandbox/settings/dynamics``):

- ``client_id`` / ``client_secret``: the app registration's credentials
  (default ``sandbox-client-id`` / ``sandbox-client-secret``).
- ``tenants``: tenant names or GUIDs the authority answers for
  (default ``sandbox-tenant`` and ``TENANT_ID``).
- ``token_lifetime_seconds``: ``expires_in`` of issued tokens (default 3599).
- ``client_secret_expired``, ``app_disabled``, ``grant_revoked``: make the token endpoint
  answer as Entra ID does when a secret expired, the app was disabled, or consent was revoked.
- ``max_page_size``: the service's page size cap (default 5000).
- ``max_url_length``: longest accepted request URL (default 32768, Dataverse's limit).
- ``service_protection_requests`` / ``service_protection_window_seconds``: requests allowed
  per sliding window (default: no limit / 300 s) before 429 with Retry-After.
- ``custom_attributes``: extra columns per table, see ``schema.add_custom_attributes``.
- ``untracked_tables`` (default none), ``change_tracking_days`` (default 7) and
  ``delta_tokens_expired_through``: change tracking per table and the delta tokens' lifetime,
  see ``tracking``.

Runtime state (token signing key, the row-version counter, deletion versions, the throttle
window) lives on the context object; it survives ``/_sandbox/reset`` harmlessly because
versions only grow and the throttle window restarts whenever the settings are cleared.
"""

from __future__ import annotations

import collections
import itertools
import secrets
import threading
import time
from typing import Any

from crm_pipelines.sandbox.app import SandboxContext

from .schema import CRM

TENANT_ID = "5f0c1d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f"
TENANT_NAME = "sandbox-tenant"
CLIENT_ID = "sandbox-client-id"
CLIENT_SECRET = "sandbox-client-secret"
ORGANIZATION_ID = "2c8d5e0a-7b1f-4e3c-9d2a-6f4b8c0e1a3d"
BUSINESS_UNIT_ID = "9a7b3c1d-2e4f-4a6b-8c0d-1e2f3a4b5c6d"
# The application user Dataverse creates for the app registration: the caller of every
# request, and the default owner of what it creates.
APP_USER_ID = "e1d2c3b4-a596-4788-99aa-bbccddeeff00"

DEFAULTS: dict[str, Any] = {
    "client_id": CLIENT_ID,
    "client_secret": CLIENT_SECRET,
    "tenants": [TENANT_NAME, TENANT_ID],
    "token_lifetime_seconds": 3599,
    "client_secret_expired": False,
    "app_disabled": False,
    "grant_revoked": False,
    "max_page_size": 5000,
    "max_url_length": 32768,
    "service_protection_requests": None,
    "service_protection_window_seconds": 300,
    "untracked_tables": [],
    "change_tracking_days": 7,  # Organization.ExpireChangeTrackingInDays
}


def setting(ctx: SandboxContext, name: str) -> Any:
    value = ctx.crm_settings(CRM).get(name)
    return DEFAULTS.get(name) if value is None else value


class DynamicsState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.signing_key = secrets.token_bytes(32)
        self._versions = itertools.count(int(time.time() * 1000))
        self.deleted: dict[tuple[str, str], int] = {}  # (entity set, id) → version of the delete
        self._throttle_owner: object = None
        self._calls: collections.deque[float] = collections.deque()

    def next_version(self) -> int:
        with self.lock:
            return next(self._versions)

    def current_version(self) -> int:
        """A version no later write can be at or below."""
        return self.next_version()

    def admit(self, settings: dict[str, Any], limit: int | None, window: float) -> float | None:
        """Count a request; None if it may run, else the seconds until it could (Retry-After)."""
        now = time.monotonic()
        with self.lock:
            if self._throttle_owner is not settings:  # settings were reset: a fresh window
                self._throttle_owner = settings
                self._calls.clear()
            while self._calls and self._calls[0] <= now - window:
                self._calls.popleft()
            if limit is not None and len(self._calls) >= limit:
                return self._calls[0] + window - now
            self._calls.append(now)
            return None


def state(ctx: SandboxContext) -> DynamicsState:
    return ctx.state_of("dynamics", DynamicsState)
