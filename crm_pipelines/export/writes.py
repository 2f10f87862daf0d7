"""What the push sends and what comes back, shared by the CRM clients and the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Write:
    """One intended write of the push. Creates are sent as upserts on the Enginy id (an external
    id field, a unique property, an alternate key), so sending one twice — a retry after a
    dropped answer, a re-run after a crash — updates the record the first one created."""

    write_id: str  # the write ledger's key for this intent
    action: Literal["create", "update"]
    enginy_id: str
    fields: dict[str, Any]
    crm_id: str | None = None  # updates address the CRM record by its id
    owner_id: str | None = None  # a CRM user id
    company_id: str | None = None  # the CRM company to link the contact to
    company_link: Literal["primary", "additional"] = "primary"  # additional: HubSpot only; elsewhere on creates
    unlink_company_id: str | None = None  # the previous primary company, removed (primary_remove_previous)
    allow_duplicates: bool = False  # save even if the CRM's duplicate rules object (Salesforce)


@dataclass(frozen=True)
class WriteResult:
    write_id: str
    status: Literal["created", "updated", "rejected", "failed"]  # failed: transient, retried next run
    crm_id: str | None = None
    error: str | None = None
    error_code: str | None = None  # the CRM's own code, e.g. DUPLICATES_DETECTED
