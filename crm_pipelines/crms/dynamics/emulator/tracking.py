"""Change tracking as a real Dataverse environment limits it: per table, and for a time.

- A table tracks changes only when its Track changes option is on (``ChangeTrackingEnabled`` in
  its EntityDefinitions). On a table without it, ``Prefer: odata.track-changes`` is ignored: the
  rows come back with no delta link. Settings: ``untracked_tables``, logical names with Track
  changes off (default none).
- Changes are kept for ``ExpireChangeTrackingInDays`` (seven days by default); a delta token older
  than that answers 400 ``ExpiredVersionStamp`` (0x80044352), "Version stamp associated with the
  client has expired. Please perform a full sync." — the answer the SDK's RetrieveEntityChanges
  gives too. Settings: ``change_tracking_days`` (default 7). ``expire_delta_tokens`` expires every
  token issued so far at once, as the retention lapsing (or a table's schema changing) does.
- A token the environment never issued answers 400 with the query error code.
(learn.microsoft.com/power-apps/developer/data-platform/use-change-tracking-synchronize-data-external-systems)
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from crm_pipelines.sandbox.app import SandboxContext

from .records import BAD_QUERY, ODataError
from .schema import CRM
from .state import setting, state

EXPIRED_VERSION_STAMP = "0x80044352"
_STAMP = "%m/%d/%Y %H:%M:%S"


def tracked(ctx: SandboxContext, logical_name: str) -> bool:
    """Whether the table has Track changes on."""
    return logical_name not in (setting(ctx, "untracked_tables") or [])


def issue_token(version: int) -> str:
    """A delta token as Dataverse writes it: the row version, then when it was issued (UTC)."""
    return f"{version}!{datetime.now(timezone.utc).strftime(_STAMP)}"


def token_version(ctx: SandboxContext, logical_name: str, token: str) -> int:
    """The row version a delta token continues from; ODataError if it cannot be used."""
    version, _, stamp = token.partition("!")
    try:
        since = int(version)
        issued = datetime.strptime(stamp, _STAMP).replace(tzinfo=timezone.utc)
    except ValueError:
        raise ODataError(400, BAD_QUERY, f"The delta token '{token}' is not valid.") from None
    if not tracked(ctx, logical_name):
        # Unreachable on a real environment (Track changes cannot be turned off once on); the
        # sandbox can, and a token for such a table cannot be followed.
        raise ODataError(400, BAD_QUERY, f"Change tracking is not enabled for the entity '{logical_name}'.")
    expired_through = ctx.crm_settings(CRM).get("delta_tokens_expired_through")
    too_old = datetime.now(timezone.utc) - issued > timedelta(days=float(setting(ctx, "change_tracking_days")))
    if too_old or (expired_through is not None and since <= int(expired_through)):
        raise ODataError(400, EXPIRED_VERSION_STAMP,
                         "Version stamp associated with the client has expired. Please perform a full sync.")
    return since


def expire_delta_tokens(ctx: SandboxContext) -> None:
    """Make every delta token issued so far answer ExpiredVersionStamp; later ones still work."""
    ctx.crm_settings(CRM)["delta_tokens_expired_through"] = state(ctx).current_version()
