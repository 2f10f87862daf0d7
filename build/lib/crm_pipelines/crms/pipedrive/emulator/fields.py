"""Pipedrive's fields, as /v1/personFields, /v1/organizationFields and /v1/leadFields describe them.

Built-in fields have readable keys (``first_name``, ``job_title``); custom fields have a
40-character hashed key and a name only people read, so a client must look keys up by name.
Each sandbox account starts with the custom fields the example integration config maps (an
Enginy Id to upsert by, LinkedIn, the campaign properties); POST /v1/{object}Fields adds more.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

CRM = "pipedrive"
# The store's object names and the URL words of each.
FIELD_PATHS = {"personFields": "persons", "organizationFields": "organizations", "leadFields": "leads"}
FIELD_TYPES = ("varchar", "varchar_auto", "text", "double", "monetary", "date", "set", "enum", "user", "org",
               "people", "phone", "time", "timerange", "daterange", "address", "int")


@dataclass(frozen=True)
class Field:
    key: str
    name: str
    field_type: str
    custom: bool = True
    options: tuple[tuple[int, str], ...] = ()  # (id, label): enum values are written as the option id
    editable: bool = True
    mandatory: bool = False

    def describe(self, order: int) -> dict[str, Any]:
        return {"id": order + 1, "key": self.key, "name": self.name, "order_nr": order, "field_type": self.field_type,
                "add_time": "2024-01-01 00:00:00", "update_time": "2024-01-01 00:00:00", "active_flag": True,
                "edit_flag": self.custom, "bulk_edit_allowed": self.editable, "mandatory_flag": self.mandatory,
                "index_visible_flag": True, "details_visible_flag": True, "add_visible_flag": self.editable,
                "important_flag": False, "searchable_flag": self.custom and self.field_type in ("varchar", "text"),
                "filtering_allowed": True, "sortable_flag": True,
                "options": [{"id": i, "label": label} for i, label in self.options] or None}


def hashed_key(obj: str, name: str) -> str:
    """A custom field's key: 40 hex characters, fixed per name so seeded data is stable."""
    return hashlib.sha1(f"{obj}:{name}".encode()).hexdigest()


def _custom(obj: str, name: str, field_type: str = "varchar", options: tuple[str, ...] = ()) -> Field:
    return Field(hashed_key(obj, name), name, field_type,
                 options=tuple((i + 1, label) for i, label in enumerate(options)))


def _system(*specs: tuple[str, str, str]) -> list[Field]:
    return [Field(key, name, kind, custom=False, editable=key not in ("id", "add_time", "update_time"),
                  mandatory=key in ("name", "title")) for key, name, kind in specs]


CAMPAIGN_FIELDS = ("Campaign sequence details", "Campaign engagement status", "Campaign reply analysis",
                   "Campaign opens", "Campaign clicks", "Campaign open analysis", "Campaign click analysis",
                   "Campaigns", "Senders", "Activities", "Conversation tags", "Conversation tag categories")
SEQUENCE_STATUS = ("Not Started", "Ongoing", "Replied", "Finished")

BUILT_IN: dict[str, list[Field]] = {
    "persons": _system(("id", "ID", "int"), ("name", "Name", "varchar"), ("first_name", "First name", "varchar"),
                       ("last_name", "Last name", "varchar"), ("email", "Email", "varchar"),
                       ("phone", "Phone", "phone"), ("job_title", "Job title", "varchar"),
                       ("org_id", "Organization", "org"), ("owner_id", "Owner", "user"),
                       ("add_time", "Person created", "date"), ("update_time", "Update time", "date")),
    "organizations": _system(("id", "ID", "int"), ("name", "Name", "varchar"), ("address", "Address", "address"),
                             ("owner_id", "Owner", "user"), ("add_time", "Organization created", "date"),
                             ("update_time", "Update time", "date")),
    "leads": _system(("id", "ID", "varchar"), ("title", "Title", "varchar"), ("owner_id", "Owner", "user"),
                     ("person_id", "Person", "people"), ("organization_id", "Organization", "org"),
                     ("add_time", "Lead created", "date"), ("update_time", "Update time", "date")),
}

STARTING_CUSTOM: dict[str, list[Field]] = {
    "persons": [_custom("persons", "Enginy Id"), _custom("persons", "LinkedIn"),
                *[_custom("persons", name, "double" if name in ("Campaign opens", "Campaign clicks") else "text")
                  for name in CAMPAIGN_FIELDS],
                _custom("persons", "Sequence status", "enum", SEQUENCE_STATUS),
                _custom("persons", "Last Enginy engagement")],
    "organizations": [_custom("organizations", "Enginy Id"), _custom("organizations", "Website"),
                      _custom("organizations", "LinkedIn"), _custom("organizations", "Employees", "int"),
                      _custom("organizations", "Last Enginy engagement")],
    "leads": [_custom("leads", "Enginy Id"), _custom("leads", "Lead source")],
}


def fields_for(settings: dict[str, Any], obj: str) -> list[Field]:
    """Built-in fields, the starting custom ones, then those added through the API."""
    added = [Field(**spec) for spec in settings.get("custom_fields", {}).get(obj, [])]
    return BUILT_IN[obj] + STARTING_CUSTOM[obj] + added


def custom_fields(settings: dict[str, Any], obj: str) -> dict[str, Field]:
    return {f.key: f for f in fields_for(settings, obj) if f.custom}


def by_name(settings: dict[str, Any], obj: str, name: str) -> Field:
    return next(f for f in fields_for(settings, obj) if f.name == name)


def add_custom_field(settings: dict[str, Any], obj: str, body: dict[str, Any]) -> Field:
    name, field_type = str(body.get("name") or "").strip(), body.get("field_type")
    if not name:
        raise ValueError("Field name is required")
    if field_type not in FIELD_TYPES:
        raise ValueError(f"Field type {field_type!r} is not valid. Valid types: {', '.join(FIELD_TYPES)}")
    existing = {f.key for f in fields_for(settings, obj)}
    key = hashed_key(obj, name)
    while key in existing:  # Pipedrive lets two fields share a name; their keys still differ
        key = hashlib.sha1(key.encode()).hexdigest()
    labels = [o["label"] if isinstance(o, dict) else str(o) for o in body.get("options") or []]
    field = Field(key, name, field_type, options=tuple((i + 1, label) for i, label in enumerate(labels)))
    settings.setdefault("custom_fields", {}).setdefault(obj, []).append(
        {"key": field.key, "name": field.name, "field_type": field.field_type, "options": field.options})
    return field
