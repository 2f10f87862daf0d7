"""Associations v4: typed, labelled links between records, the same link seen from both ends.

One stored record per linked pair (in a fixed direction) keeps the HubSpot-defined type ids as
seen from its first end; the other end's ids come from the inverse table. A contact has at most
one primary company (type 1): making another company primary demotes the previous one to a
plain association and moves the contact's ``associatedcompanyid``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from crm_pipelines.sandbox.app import SandboxContext
from crm_pipelines.sandbox.store import Record, Store

from .records import HubSpotError
from .schema import CRM

OBJECT = "associations"
PRIMARY_COMPANY = 1  # contact → company, "Primary"
UNLABELED_CONTACT_COMPANY = 279

# (from, to) → {typeId: label or None}; the first id of each pair is the unlabeled default.
TYPES: dict[tuple[str, str], dict[int, str | None]] = {
    ("contacts", "companies"): {279: None, 1: "Primary"},
    ("companies", "contacts"): {280: None, 2: "Primary"},
    ("contacts", "tasks"): {203: None}, ("tasks", "contacts"): {204: None},
    ("companies", "tasks"): {191: None}, ("tasks", "companies"): {192: None},
    ("contacts", "emails"): {197: None}, ("emails", "contacts"): {198: None},
    ("companies", "emails"): {185: None}, ("emails", "companies"): {186: None},
    ("contacts", "notes"): {201: None}, ("notes", "contacts"): {202: None},
    ("companies", "notes"): {189: None}, ("notes", "companies"): {190: None},
}
INVERSE = {279: 280, 280: 279, 1: 2, 2: 1, 203: 204, 204: 203, 191: 192, 192: 191, 197: 198, 198: 197,
           185: 186, 186: 185, 201: 202, 202: 201, 189: 190, 190: 189}


class _Index:
    """Which stored pairs touch each record, so reading a record's links never scans them all."""

    def __init__(self, store: Store) -> None:
        self.generation = store.generation
        self.by_end: dict[tuple[str, str], set[str]] = defaultdict(set)
        for pair in store.records(CRM, OBJECT, include_deleted=True):
            self.add(pair)

    def add(self, pair: Record) -> None:
        f = pair.fields
        self.by_end[(f["from_type"], f["from_id"])].add(pair.id)
        self.by_end[(f["to_type"], f["to_id"])].add(pair.id)


def _index(ctx: SandboxContext) -> _Index:
    return ctx.state_of("hubspot.associations", lambda: _Index(ctx.store), reset_with_store=True)


def default_type(from_type: str, to_type: str) -> int:
    return next(iter(_types(from_type, to_type)))


def _types(from_type: str, to_type: str) -> dict[int, str | None]:
    types = TYPES.get((from_type, to_type))
    if types is None:
        raise HubSpotError(400, "VALIDATION_ERROR", f"{from_type} cannot be associated with {to_type}")
    return types


def _key(from_type: str, from_id: str, to_type: str, to_id: str) -> tuple[str, bool]:
    """The stored pair's id, and whether (from, to) is its stored direction."""
    if (from_type, from_id) <= (to_type, to_id):
        return f"{from_type}:{from_id}|{to_type}:{to_id}", True
    return f"{to_type}:{to_id}|{from_type}:{from_id}", False


def spec(type_id: int, from_type: str, to_type: str) -> dict[str, Any]:
    return {"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": _types(from_type, to_type).get(type_id)}


def _live(ctx: SandboxContext, obj: str, record_id: str) -> Record:
    record = ctx.store.get(CRM, obj, str(record_id))
    if record is None:
        raise HubSpotError(404, "OBJECT_NOT_FOUND", f"No {obj[:-1]} with ID {record_id} exists")
    return record


def labels(ctx: SandboxContext, from_type: str, from_id: str, to_type: str, to_id: str) -> list[int]:
    """The type ids linking the two records, seen from ``from``; empty when not linked."""
    key, forward = _key(from_type, from_id, to_type, to_id)
    pair = ctx.store.get(CRM, OBJECT, key)
    if pair is None:
        return []
    return list(pair.fields["types"]) if forward else [INVERSE[t] for t in pair.fields["types"]]


def _write(ctx: SandboxContext, from_type: str, from_id: str, to_type: str, to_id: str, types: list[int],
           request_id: str | None) -> None:
    key, forward = _key(from_type, from_id, to_type, to_id)
    stored = sorted(types if forward else [INVERSE[t] for t in types])
    existing = ctx.store.get(CRM, OBJECT, key, include_deleted=True)
    if not types:
        if existing is not None and not existing.is_deleted:
            ctx.store.delete(CRM, OBJECT, key, request_id=request_id)
        return
    fields = {"types": stored}
    if existing is None:
        ends = sorted([(from_type, from_id), (to_type, to_id)])
        pair = ctx.store.create(CRM, OBJECT, key, {"from_type": ends[0][0], "from_id": ends[0][1],
                                                   "to_type": ends[1][0], "to_id": ends[1][1], **fields},
                                request_id=request_id)
        _index(ctx).add(pair)
    elif existing.is_deleted:
        ctx.store.undelete(CRM, OBJECT, key, request_id=request_id)
        ctx.store.update(CRM, OBJECT, key, fields, request_id=request_id)
    elif existing.fields["types"] != stored:
        ctx.store.update(CRM, OBJECT, key, fields, request_id=request_id)


def associate(ctx: SandboxContext, from_type: str, from_id: str, to_type: str, to_id: str, type_ids: list[int],
              request_id: str | None) -> list[int]:
    """Add labels (plus the unlabeled type every link carries); answers the link's labels."""
    allowed = _types(from_type, to_type)
    unknown = [t for t in type_ids if t not in allowed]
    if unknown:
        raise HubSpotError(400, "VALIDATION_ERROR",
                           f"associationTypeId {unknown[0]} is not valid between {from_type} and {to_type}")
    with ctx.store.lock:
        _live(ctx, from_type, from_id)
        _live(ctx, to_type, to_id)
        current = set(labels(ctx, from_type, from_id, to_type, to_id))
        wanted = current | set(type_ids) | {default_type(from_type, to_type)}
        _write(ctx, from_type, from_id, to_type, to_id, sorted(wanted), request_id)
        primary = _primary_contact_end(from_type, from_id, to_type, to_id, type_ids)
        if primary is not None:
            _make_primary(ctx, *primary, request_id)
        return labels(ctx, from_type, from_id, to_type, to_id)


def _primary_contact_end(from_type: str, from_id: str, to_type: str, to_id: str,
                         type_ids: list[int]) -> tuple[str, str] | None:
    """(contact id, company id) when the call makes the company the contact's primary."""
    if (from_type, to_type) == ("contacts", "companies") and PRIMARY_COMPANY in type_ids:
        return from_id, to_id
    if (from_type, to_type) == ("companies", "contacts") and INVERSE[PRIMARY_COMPANY] in type_ids:
        return to_id, from_id
    return None


def _make_primary(ctx: SandboxContext, contact_id: str, company_id: str, request_id: str | None) -> None:
    for other_id, types in linked(ctx, "contacts", contact_id, "companies"):
        if other_id != company_id and PRIMARY_COMPANY in types:
            _write(ctx, "contacts", contact_id, "companies", other_id,
                   [t for t in types if t != PRIMARY_COMPANY], request_id)
    contact = ctx.store.get(CRM, "contacts", contact_id)
    if contact is not None and contact.fields.get("associatedcompanyid") != company_id:
        ctx.store.update(CRM, "contacts", contact_id, {"associatedcompanyid": company_id}, request_id=request_id)


def set_primary_company(ctx: SandboxContext, contact_id: str, company_id: str | None, request_id: str | None) -> None:
    """Writing ``associatedcompanyid`` on a contact is the legacy way to set its primary company."""
    with ctx.store.lock:
        if company_id is None:
            for other_id, types in linked(ctx, "contacts", contact_id, "companies"):
                if PRIMARY_COMPANY in types:
                    _write(ctx, "contacts", contact_id, "companies", other_id,
                           [t for t in types if t != PRIMARY_COMPANY], request_id)
            return
        if ctx.store.get(CRM, "companies", company_id) is None:
            raise HubSpotError(400, "VALIDATION_ERROR", f"associatedcompanyid {company_id} is not an existing company")
        associate(ctx, "contacts", contact_id, "companies", company_id, [PRIMARY_COMPANY], request_id)


def remove(ctx: SandboxContext, from_type: str, from_id: str, to_type: str, to_id: str,
           request_id: str | None, type_ids: list[int] | None = None) -> None:
    """Remove some labels, or (type_ids None) the whole link."""
    _types(from_type, to_type)
    with ctx.store.lock:
        current = labels(ctx, from_type, from_id, to_type, to_id)
        keep = [] if type_ids is None else [t for t in current if t not in type_ids]
        if keep == [default_type(from_type, to_type)] and type_ids is not None and default_type(
                from_type, to_type) in type_ids:
            keep = []
        _write(ctx, from_type, from_id, to_type, to_id, keep, request_id)
        primary = {("contacts", "companies"): PRIMARY_COMPANY,
                   ("companies", "contacts"): INVERSE[PRIMARY_COMPANY]}.get((from_type, to_type))
        if primary is not None and primary in current and primary not in keep:
            contact_id = from_id if from_type == "contacts" else to_id
            contact = ctx.store.get(CRM, "contacts", contact_id)
            if contact is not None:
                # The history records the clearing; the record, as HubSpot's, no longer has the property.
                ctx.store.update(CRM, "contacts", contact_id, {"associatedcompanyid": None}, request_id=request_id)
                contact.fields.pop("associatedcompanyid", None)


def linked(ctx: SandboxContext, from_type: str, from_id: str, to_type: str) -> list[tuple[str, list[int]]]:
    """(to id, type ids seen from ``from``) for every live record of ``to_type`` linked to ``from``."""
    out = []
    with ctx.store.lock:
        pairs = [ctx.store.get(CRM, OBJECT, key) for key in _index(ctx).by_end.get((from_type, from_id), ())]
    for pair in pairs:
        if pair is None:
            continue
        f = pair.fields
        if (f["from_type"], f["from_id"], f["to_type"]) == (from_type, from_id, to_type):
            other, types = f["to_id"], list(f["types"])
        elif (f["to_type"], f["to_id"], f["from_type"]) == (from_type, from_id, to_type):
            other, types = f["from_id"], [INVERSE[t] for t in f["types"]]
        else:
            continue
        if ctx.store.get(CRM, to_type, other) is not None:
            out.append((other, types))
    return sorted(out, key=lambda item: int(item[0]) if item[0].isdigit() else item[0])


def seed_pair(ctx: SandboxContext, from_type: str, from_id: str, to_type: str, to_id: str, type_ids: list[int],
              at: Any = None) -> None:
    """Link two seeded records directly, unchecked, as if linked when the portal was filled."""
    key, forward = _key(from_type, from_id, to_type, to_id)
    ends = sorted([(from_type, from_id), (to_type, to_id)])
    stored = sorted(type_ids if forward else [INVERSE[t] for t in type_ids])
    pair = ctx.store.create(CRM, OBJECT, key, {"from_type": ends[0][0], "from_id": ends[0][1], "to_type": ends[1][0],
                                               "to_id": ends[1][1], "types": stored}, at=at)
    _index(ctx).add(pair)
