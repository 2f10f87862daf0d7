"""Creates, updates, upserts and deletes, checked as the org checks them, shared by REST,
sObject Collections and Bulk API 2.0.

A ``Batch`` checks every record first (field access, types, required fields, restricted
picklists, references, unique values, duplicate rules, the org's validation rules) against the
store *and* the records accepted earlier in the same batch, then writes. So allOrNone needs no
rollback: when it is set and one record fails, nothing is written and history stays clean.

Validation rules (settings ``validation_rules``): a list of {object, field, condition, value,
message} where condition is "required" (the field must have a value), "regex" (a value, when
present, must fully match ``value``) or "not-equal" (the field must not equal ``value``); a
broken rule answers FIELD_CUSTOM_VALIDATION_EXCEPTION with ``message``.
Duplicate rules (settings ``duplicate_rules``, {"Contact": true, "Lead": true}): a created
Contact or Lead with the Email (case-insensitive) of an existing one, or the same first name,
last name and Account (Lead: Company), all non-blank, is refused with DUPLICATES_DETECTED unless the request
carries ``Sforce-Duplicate-Rule-Header: allowSave=true``; "block" instead of true refuses it even
then.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from crm_pipelines.sandbox.app import SandboxContext
from crm_pipelines.sandbox.store import Record
from crm_pipelines.crms.salesforce.emulator.common import schema, setting
from crm_pipelines.crms.salesforce.emulator.schema import (
    CRM, INTEGRATION_USER_ID, OBJECT_BY_PREFIX, Field, ObjectSchema, make_id, to_id18,
)
from crm_pipelines.crms.salesforce.emulator.values import (
    HIDDEN_PREFIX, attributes, format_datetime, parse_date, parse_datetime,
)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ID = re.compile(r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$")
SKIPPED_KEYS = {"attributes"}


def error(code: str, message: str, fields: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {"statusCode": code, "message": message, "fields": fields or [], **extra}


class RecordError(Exception):
    def __init__(self, *errors: dict[str, Any]) -> None:
        super().__init__(errors[0]["message"])
        self.errors = list(errors)


def allow_save(header: str | None) -> bool:
    """Parse Sforce-Duplicate-Rule-Header: allowSave=true; includeRecordDetails=false; ..."""
    for part in (header or "").split(";"):
        key, _, value = part.partition("=")
        if key.strip().lower() == "allowsave":
            return value.strip().lower() == "true"
    return False


@dataclass
class Planned:
    op: str  # create | update
    obj: str
    record_id: str
    fields: dict[str, Any]
    created: bool = False


@dataclass
class Batch:
    """One request's writes to one object."""

    ctx: SandboxContext
    obj: str
    version: str
    allow_duplicates: bool = False
    request_id: str | None = None
    bulk: bool = False  # Bulk API: CSV strings, "#N/A" means null, empty means unset
    schema: ObjectSchema = field(init=False)
    planned: list[Planned] = field(default_factory=list)
    # This request's accepted records, not in the store until commit: field → value → ids.
    _unique: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    _dupes: dict[tuple, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.schema = schema(self.ctx, self.obj)

    # --- lookups: the store's indexes (kept current on every write) plus this request's records ----
    # Through Store.lookup, not a scan of the object per request: with a million records a request
    # of 200 updates scanned them all for its unique fields, and the push waited on it.
    def _holding(self, name: str, value: Any) -> list[str]:
        """The records whose field ``name`` holds ``value`` (without case)."""
        def key(record: Record) -> str | None:
            held = record.fields.get(name)
            return None if held in (None, "") else str(held).lower()

        wanted = str(value).lower()
        ids = [r.id for r in self.ctx.store.lookup(CRM, self.obj, f"unique:{name}", key, wanted)]
        return ids + [i for i in self._unique.get(name, {}).get(wanted, []) if i not in ids]

    def matches_external_id(self, name: str, value: str) -> list[str]:
        return self._holding(name, value)

    @staticmethod
    def _dupe_keys(obj: str, fields: dict[str, Any]) -> list[tuple]:
        keys: list[tuple] = []
        email = fields.get("Email")
        if email:
            keys.append(("email", str(email).strip().lower()))
        first, last = fields.get("FirstName"), fields.get("LastName")
        other = fields.get("AccountId") if obj == "Contact" else fields.get("Company")
        if first and last and other:  # blank fields never match, as in the standard matching rules
            keys.append(("name", str(first).strip().lower(), str(last).strip().lower(), str(other).strip().lower()))
        return keys

    def _duplicates_of(self, wanted: tuple) -> list[str]:
        """The records a duplicate rule's key (by email, by name and account) finds."""
        kind, obj = wanted[0], self.obj

        def key(record: Record) -> tuple | None:
            # The store keeps this function with its index: it holds the object's name, not this
            # request (and its planned records).
            return next((k for k in Batch._dupe_keys(obj, record.fields) if k[0] == kind), None)

        ids = [r.id for r in self.ctx.store.lookup(CRM, self.obj, f"duplicate:{kind}", key, wanted)]
        return ids + [i for i in self._dupes.get(wanted, []) if i not in ids]

    def _remember(self, record_id: str, fields: dict[str, Any]) -> None:
        for name, value in fields.items():
            if value not in (None, ""):
                self._unique.setdefault(name, {}).setdefault(str(value).lower(), []).append(record_id)
        for key in self._dupe_keys(self.obj, fields):
            self._dupes.setdefault(key, []).append(record_id)

    # --- checks ---------------------------------------------------------------------------------
    def _coerce(self, f: Field, value: Any) -> Any:
        label = f.describe()["label"]
        if self.bulk and isinstance(value, str):
            if value == "#N/A":
                return None
            if f.type == "boolean":
                if value.lower() in ("true", "1", "yes"):
                    return True
                if value.lower() in ("false", "0", "no", ""):
                    return False
            if f.type in ("double", "int"):
                try:
                    value = float(value) if f.type == "double" else int(float(value))
                except ValueError:
                    pass
        if value is None:
            return None
        bad_type = error("INVALID_TYPE_ON_FIELD_IN_RECORD", f"{label}: value not of required type: {value}",
                         [f.name])
        if f.type == "boolean":
            if not isinstance(value, bool):
                raise RecordError(bad_type)
            return value
        if f.type in ("double", "int"):
            if isinstance(value, bool):
                raise RecordError(bad_type)
            if isinstance(value, str):
                try:
                    value = float(value)
                except ValueError:
                    raise RecordError(bad_type) from None
            if not isinstance(value, (int, float)):
                raise RecordError(bad_type)
            return int(value) if f.type == "int" else float(value)
        if f.type == "date":
            parsed = parse_date(str(value)) if isinstance(value, str) else None
            if parsed is None:
                dt = parse_datetime(str(value)) if isinstance(value, str) else None
                if dt is None:
                    raise RecordError(bad_type)
                parsed = dt.date()
            return parsed.isoformat()
        if f.type == "datetime":
            dt = parse_datetime(value) if isinstance(value, str) else None
            if dt is None:
                raise RecordError(bad_type)
            return format_datetime(dt)
        if isinstance(value, (dict, list)) or isinstance(value, bool):
            raise RecordError(bad_type)
        text = str(value)
        if f.type in ("reference", "id"):
            if not _ID.match(text):
                raise RecordError(error("MALFORMED_ID", f"{label}: id value of incorrect type: {text}", [f.name]))
            text = to_id18(text)
            if not self._reference_exists(f, text):
                raise RecordError(error("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [f.name]))
            return text
        if f.length and len(text) > f.length:
            raise RecordError(error("STRING_TOO_LONG",
                                    f"{label}: data value too large: {text[:50]} (max length={f.length})", [f.name]))
        if f.type == "email" and text and not _EMAIL.match(text):
            raise RecordError(error("INVALID_EMAIL_ADDRESS", f"{label}: invalid email address: {text}", [f.name]))
        if f.type == "picklist" and f.restricted and text not in f.picklist:
            raise RecordError(error("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                                    f"{label}: bad value for restricted picklist field: {text}", [f.name]))
        return text

    def _reference_exists(self, f: Field, value: str) -> bool:
        if value == INTEGRATION_USER_ID and "User" in f.reference_to:
            return True
        target = OBJECT_BY_PREFIX.get(value[:3])
        return target in f.reference_to and self.ctx.store.get(CRM, target, value) is not None

    def _fields(self, payload: dict[str, Any], op: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        not_writable: list[str] = []
        for key, value in payload.items():
            if key in SKIPPED_KEYS or (key == "Id" and op == "update"):
                continue
            f = None if key.startswith(HIDDEN_PREFIX) else self.schema.lookup(key)
            if f is None:
                raise RecordError(error("INVALID_FIELD", f"No such column '{key}' on sobject of type {self.obj}",
                                        [key]))
            if f.name == "Id":
                raise RecordError(error("INVALID_FIELD_FOR_INSERT_UPDATE", "cannot specify Id in an insert call",
                                        ["Id"]))
            if (op == "create" and not f.createable) or (op == "update" and not f.updateable):
                not_writable.append(f.name)
                continue
            if self.bulk and value == "":
                if op == "update":
                    continue  # an empty CSV cell leaves the value alone on update ("#N/A" clears it)
                value = None
            out[f.name] = self._coerce(f, value)
        if not_writable:
            raise RecordError(error(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {', '.join(not_writable)}. Please check the security settings "
                "of this field and verify that it is read/write for your profile or permission set.",
                not_writable))
        return out

    def _check_rules(self, merged: dict[str, Any], record_id: str | None) -> None:
        missing = [f.name for f in self.schema.fields.values()
                   if f.required and merged.get(f.name) in (None, "")]
        if missing:
            raise RecordError(error("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]",
                                    missing))
        for f in self.schema.fields.values():
            if f.unique and merged.get(f.name) not in (None, ""):
                others = [i for i in self._holding(f.name, merged[f.name]) if i != record_id]
                if others:
                    raise RecordError(error(
                        "DUPLICATE_VALUE",
                        f"duplicate value found: {f.name} duplicates value on record with id: {others[0]}", []))
        for rule in setting(self.ctx, "validation_rules") or []:
            if rule.get("object", "").lower() != self.obj.lower():
                continue
            name, condition = rule.get("field", ""), rule.get("condition", "required")
            f = self.schema.lookup(name)
            value = merged.get(f.name if f else name)
            broken = {
                "required": value in (None, ""),
                "regex": value not in (None, "") and re.fullmatch(str(rule.get("value", "")), str(value)) is None,
                "not-equal": value is not None and str(value) == str(rule.get("value")),
            }.get(condition, False)
            if broken:
                raise RecordError(error("FIELD_CUSTOM_VALIDATION_EXCEPTION",
                                        rule.get("message", f"{name} is invalid"), [f.name if f else name]))

    def _check_duplicates(self, fields: dict[str, Any]) -> None:
        rules = setting(self.ctx, "duplicate_rules") or {}
        action = rules.get(self.obj, False)
        if not action or (action is True and self.allow_duplicates):
            return
        found: list[str] = []
        for key in self._dupe_keys(self.obj, fields):
            for record_id in self._duplicates_of(key):
                if record_id not in found:
                    found.append(record_id)
        if not found:
            return
        message = "You're creating a duplicate record. We recommend you use an existing record instead."
        result = {
            "allowSave": action is True,
            "duplicateRule": f"Standard_{self.obj}_Duplicate_Rule",
            "duplicateRuleEntityType": self.obj,
            "errorMessage": message,
            "matchResults": [{
                "entityType": self.obj,
                "errors": [],
                "matchEngine": "FuzzyMatchEngine",
                "matchRecords": [{
                    "additionalInformation": [],
                    "fieldDiffs": [],
                    "matchConfidence": 100.0,
                    "record": {"attributes": attributes(self.version, self.obj, record_id), "Id": record_id},
                } for record_id in found],
                "rule": f"Standard_{self.obj}_Match_Rule_v1_1",
                "size": len(found),
                "success": True,
            }],
        }
        raise RecordError(error("DUPLICATES_DETECTED", message, [], duplicateResult=result))

    # --- planning and writing -------------------------------------------------------------------
    def plan_create(self, payload: dict[str, Any], extra: dict[str, Any] | None = None) -> Planned:
        fields = self._fields(payload, "create")
        fields.update(extra or {})
        for f in self.schema.fields.values():
            if f.createable and f.default is not None and fields.get(f.name) is None:
                fields[f.name] = f.default
        self._check_rules(fields, None)
        self._check_duplicates(fields)
        planned = Planned("create", self.obj, make_id(self.obj), fields, created=True)
        self._remember(planned.record_id, fields)
        self.planned.append(planned)
        return planned

    def plan_update(self, record_id: str, payload: dict[str, Any]) -> Planned:
        record_id = to_id18(str(record_id or ""))
        record = self.ctx.store.get(CRM, self.obj, record_id, include_deleted=True)
        if not _ID.match(record_id):
            raise RecordError(error("MALFORMED_ID", f"{self.obj} ID: id value of incorrect type: {record_id}", []))
        if record is None:
            raise RecordError(error("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", []))
        if record.is_deleted:
            raise RecordError(error("ENTITY_IS_DELETED", "entity is deleted", []))
        fields = self._fields(payload, "update")
        merged = {**record.fields, **fields}
        self._check_rules(merged, record_id)
        planned = Planned("update", self.obj, record_id, fields)
        self._remember(record_id, fields)
        self.planned.append(planned)
        return planned

    def plan_upsert(self, ext_field: str, value: Any, payload: dict[str, Any]) -> Planned:
        matches = self.matches_external_id(ext_field, value)
        if len(matches) > 1:
            raise RecordError(error("DUPLICATE_EXTERNAL_ID",
                                    f"{ext_field}: more than one record found for external id field: "
                                    f"[{', '.join(matches)}]", [ext_field]))
        body = {k: v for k, v in payload.items() if k.lower() != ext_field.lower()}
        if matches and any(p.record_id == matches[0] and p.op == "create" for p in self.planned):
            # The same external id twice in one request: Salesforce refuses the later record.
            raise RecordError(error("DUPLICATE_EXTERNAL_ID", f"Duplicate external id specified: {value}",
                                    [ext_field]))
        if matches:
            return self.plan_update(matches[0], body)
        return self.plan_create(body, {ext_field: value})

    def commit(self, planned: list[Planned] | None = None) -> None:
        store = self.ctx.store
        now = store.clock()
        with store.lock:
            for p in self.planned if planned is None else planned:
                if p.op == "create":
                    store.create(CRM, p.obj, p.record_id, p.fields, at=now, request_id=self.request_id)
                else:
                    store.update(CRM, p.obj, p.record_id, p.fields, at=now, request_id=self.request_id)
        self.planned = []


def delete(ctx: SandboxContext, obj: str | None, record_id: str, request_id: str | None) -> None:
    """Soft-delete one record; obj None: found by the id's key prefix (collections delete by id)."""
    record_id = to_id18(record_id)
    obj = obj or OBJECT_BY_PREFIX.get(record_id[:3])
    record = ctx.store.get(CRM, obj, record_id, include_deleted=True) if obj else None
    if record is None:
        raise RecordError(error("INVALID_CROSS_REFERENCE_KEY" if _ID.match(record_id) else "MALFORMED_ID",
                                "invalid cross reference id" if _ID.match(record_id)
                                else f"malformed id {record_id}", []))
    if record.is_deleted:
        raise RecordError(error("ENTITY_IS_DELETED", "entity is deleted", []))
    ctx.store.delete(CRM, obj, record_id, request_id=request_id)
