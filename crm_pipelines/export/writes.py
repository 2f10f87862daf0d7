"""What the push sends and what comes back — records and campaign activities — shared by the CRM
clients (crms/base.py's protocol) and the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal


# Writes, their results and activities are made a million at a time and never changed after
# (dataclasses.replace makes a changed copy): plain slotted dataclasses, made in half the time of
# frozen ones.
@dataclass(slots=True)
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


@dataclass(slots=True)
class WriteResult:
    write_id: str
    status: Literal["created", "updated", "rejected", "failed"]  # failed: transient, retried next run
    crm_id: str | None = None
    error: str | None = None
    error_code: str | None = None  # the CRM's own code, e.g. DUPLICATES_DETECTED


# The step types whose "sent" event is an activity (a profile visit is not an outreach touchpoint).
KINDS: dict[str, Literal["email", "call", "linkedin"]] = {
    "email": "email", "call": "call", "linkedin_message": "linkedin", "linkedin_connection_request": "linkedin"}


@dataclass(slots=True)
class Activity:
    """One campaign event to log as a completed activity on a CRM contact or lead."""

    write_id: str  # the Enginy event id: the ledger's key, and the key stored on the CRM activity
    step_type: str  # email, call, linkedin_message, linkedin_connection_request
    record_object: Literal["contacts", "leads"]
    record_id: str  # the CRM contact or lead the activity is logged on
    subject: str
    description: str | None  # the message (when include_message_body) and the campaign it came from
    occurred_at: datetime
    owner_id: str | None = None  # None: the CRM's default (the integration user)
    in_doubt: bool = False  # an earlier send got no answer: look it up in the CRM before sending again

    # What the write ledger records of every write.
    action = "create"
    crm_id = None

    @property
    def kind(self) -> Literal["email", "call", "linkedin"]:
        return KINDS[self.step_type]

    @property
    def enginy_id(self) -> str:
        return self.write_id
