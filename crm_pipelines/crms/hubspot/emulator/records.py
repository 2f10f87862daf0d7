"""CRM records as HubSpot keeps them: numeric ids, string properties, system properties.

The store holds what a client wrote (property name → string); ``hs_object_id``, the create
dates and the last-modified dates are answered from the record itself, so they can never
drift from when the write really happened.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from crm_pipelines.sandbox.app import SandboxContext
from crm_pipelines.sandbox.store import Record

from .schema import (
    CRM, DEFAULT_PROPERTIES, ENGAGEMENT_DEFAULTS, MODIFIED, DEFAULT_MODIFIED, REQUIRED, InvalidValue, coerce, iso,
    schema_for,
)


class HubSpotError(Exception):
    """An answer HubSpot gives instead of doing the write or read."""

    def __init__(self, status: int, category: str, message: str, *, errors: list[dict[str, Any]] | None = None,
                 context: dict[str, Any] | None = None, sub_category: str | None = None) -> None:
        super().__init__(message)
        self.status, self.category, self.message = status, category, message
        self.errors, self.context, self.sub_category = errors, context, sub_category

    def body(self, correlation_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {"status": "error", "message": self.message, "correlationId": correlation_id,
                                "category": self.category}
        if self.sub_category:
            body["subCategory"] = self.sub_category
        if self.errors:
            body["errors"] = self.errors
        if self.context:
            body["context"] = self.context
        return body


def not_found(obj: str) -> HubSpotError:
    return HubSpotError(404, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric.")


def system_value(obj: str, record: Record, name: str) -> str | None:
    if name == "hs_object_id":
        return record.id
    if name in ("createdate", "hs_createdate"):
        return iso(record.created_at)
    if name in MODIFIED.get(obj, DEFAULT_MODIFIED):
        return iso(record.modified_at)
    return None


def value(obj: str, record: Record, name: str) -> str | None:
    system = system_value(obj, record, name)
    return system if system is not None else record.fields.get(name)


def default_properties(obj: str) -> tuple[str, ...]:
    return DEFAULT_PROPERTIES.get(obj, ENGAGEMENT_DEFAULTS)


def wire(ctx: SandboxContext, obj: str, record: Record, properties: Iterable[str] | None) -> dict[str, Any]:
    """The SimplePublicObject shape: requested properties that exist, null when unset."""
    known = schema_for(ctx.crm_settings(CRM), obj).properties
    names = list(properties) if properties else list(default_properties(obj))
    shape: dict[str, Any] = {
        "id": record.id,
        "properties": {n: value(obj, record, n) for n in names if n in known},
        "createdAt": iso(record.created_at),
        "updatedAt": iso(record.modified_at),
        "archived": record.is_deleted,
    }
    if record.is_deleted:
        shape["archivedAt"] = iso(record.modified_at)
    return shape


def next_id(ctx: SandboxContext, obj: str) -> str:
    """Ids are numeric and increase per object type, as HubSpot's do."""
    counters = ctx.crm_settings(CRM).setdefault("_next_ids", {})
    if obj not in counters:
        existing = [int(r.id) for r in ctx.store.records(CRM, obj, include_deleted=True) if r.id.isdigit()]
        counters[obj] = max(existing, default=_ID_BASE[obj]) + 1
    counters[obj] += 1
    return str(counters[obj] - 1)


# Different starting points per type so a test mixing up a contact id and a company id fails.
_ID_BASE = {"owners": 40_000_000, "contacts": 1000, "companies": 5_000_000, "tasks": 9_000_000, "emails": 9_500_000, "notes": 9_800_000}


def validate(ctx: SandboxContext, obj: str, properties: dict[str, Any], *, creating: bool) -> dict[str, str | None]:
    """Check every value against the properties API; all problems in one VALIDATION_ERROR."""
    clean, problems = check(ctx, obj, properties, creating=creating)
    if problems:
        raise invalid(problems)
    return clean


def invalid(problems: list[dict[str, Any]]) -> HubSpotError:
    return HubSpotError(400, "VALIDATION_ERROR", f"Property values were not valid: {_json(problems)}")


def check(ctx: SandboxContext, obj: str, properties: dict[str, Any], *,
          creating: bool) -> tuple[dict[str, str | None], list[dict[str, Any]]]:
    """(the values as stored, the problems HubSpot would report for them)."""
    schema = schema_for(ctx.crm_settings(CRM), obj)
    clean: dict[str, str | None] = {}
    problems: list[dict[str, Any]] = []
    for name, raw in (properties or {}).items():
        prop = schema.get(name)
        if prop is None:
            problems.append({"isValid": False, "message": f'Property "{name}" does not exist',
                             "error": "PROPERTY_DOESNT_EXIST", "name": name})
            continue
        if prop.read_only or prop.calculated:
            problems.append({"isValid": False, "message": f"{name} is a read only property; its value cannot be set.",
                             "error": "READ_ONLY_VALUE", "name": name})
            continue
        try:
            clean[name] = coerce(prop, raw)
        except InvalidValue as exc:
            problems.append(exc.detail())
    if creating:
        for name in REQUIRED.get(obj, ()):
            if clean.get(name) is None:
                problems.append({"isValid": False, "message": f"{name} is required", "error": "REQUIRED_FIELD",
                                 "name": name})
    return clean, problems


def _json(value: Any) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))


def find_by(ctx: SandboxContext, obj: str, name: str, wanted: str) -> Record | None:
    """The live record whose property ``name`` equals ``wanted`` (emails compare without case)."""
    fold = name == "email"

    def key(record: Record) -> str | None:
        current = value(obj, record, name)
        return current.lower() if fold and current is not None else current

    # Indexed: a batch upsert looks each input up, and a portal holds a million contacts.
    found = ctx.store.lookup(CRM, obj, f"property:{name}", key, wanted.lower() if fold else wanted)
    return found[0] if found else None


def check_unique(ctx: SandboxContext, obj: str, values: dict[str, str | None], own_id: str | None) -> None:
    """Contacts are unique by email, and any custom property marked hasUniqueValue is unique."""
    for name in schema_for(ctx.crm_settings(CRM), obj).unique():
        wanted = values.get(name)
        if wanted is None:
            continue
        existing = find_by(ctx, obj, name, wanted)
        if existing is not None and existing.id != own_id:
            if obj == "contacts" and name == "email":
                raise HubSpotError(409, "CONFLICT", f"Contact already exists. Existing ID: {existing.id}")
            raise HubSpotError(400, "VALIDATION_ERROR",
                               f"Property values were not valid: "
                               f'[{{"isValid":false,"message":"{wanted} already has that value on {existing.id}",'
                               f'"error":"INVALID_UNIQUE_VALUE","name":"{name}"}}]')


def create(ctx: SandboxContext, obj: str, properties: dict[str, Any], request_id: str | None,
           at: datetime | None = None) -> Record:
    clean = validate(ctx, obj, properties, creating=True)
    check_unique(ctx, obj, clean, None)
    stored = {k: v for k, v in clean.items() if v is not None}
    return ctx.store.create(CRM, obj, next_id(ctx, obj), stored, at=at, request_id=request_id)


def update(ctx: SandboxContext, obj: str, record: Record, properties: dict[str, Any], request_id: str | None) -> Record:
    clean = validate(ctx, obj, properties, creating=False)
    check_unique(ctx, obj, clean, record.id)
    with ctx.store.lock:
        updated = ctx.store.update(CRM, obj, record.id, clean, request_id=request_id)
        # A cleared property disappears, as HubSpot shows it: unset, not the empty string.
        for name, new in clean.items():
            if new is None:
                updated.fields.pop(name, None)
        return updated


def get(ctx: SandboxContext, obj: str, record_id: str, id_property: str | None = None,
        include_archived: bool = False) -> Record | None:
    if id_property and id_property != "hs_object_id":
        if id_property not in schema_for(ctx.crm_settings(CRM), obj).unique() + ["email"]:
            raise HubSpotError(400, "VALIDATION_ERROR",
                               f"{id_property} is not a unique property of {obj}; use hs_object_id or a property "
                               "with unique values")
        return find_by(ctx, obj, id_property, record_id)
    return ctx.store.get(CRM, obj, record_id, include_deleted=include_archived)
