"""Rows of the Dataverse tables in the store, and the rules every write follows.

A row is kept under its entity set name (``contacts``…) with its Web API property names, so
lookups are stored as ``_parentcustomerid_value``; fields starting with ``_`` that are not
lookup values are hidden (``_seed_id``, ``_lookup_types``) and never leave the sandbox.

Writes go through ``Data`` (straight to the store) or ``Overlay`` (a changeset's private view,
applied to the store only if every operation in it succeeded), so a $batch changeset is
all-or-nothing without the store knowing about transactions.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Callable

from crm_pipelines.sandbox.app import SandboxContext
from crm_pipelines.sandbox.store import utc_now

from crm_pipelines.sandbox.odata import QueryError, format_datetime, parse_datetime, parse_key
from .schema import BY_ENTITY_SET, CRM, DEFAULT_STATE, STATUS_OF_STATE, TABLES, Attribute, Table
from .state import APP_USER_ID, state

Fields = dict[str, Any]

NOT_FOUND = "0x80040217"
DUPLICATE_KEY = "0x80040237"
BAD_PAYLOAD = "0x80048d19"
TOO_LONG = "0x80044331"
OUT_OF_RANGE = "0x8004431a"
VERSION_MISMATCH = "0x80060882"
BAD_QUERY = "0x80060888"


class ODataError(Exception):
    """An error the Web API answers with ``{"error": {"code", "message"}}``."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


def not_found(table: Table, record_id: str) -> ODataError:
    return ODataError(404, NOT_FOUND, f"{table.logical_name} With Id = {record_id} Does Not Exist")


class Data:
    """Rows straight from the store."""

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.store = ctx.store

    def get(self, entity_set: str, record_id: str) -> Fields | None:
        record = self.store.get(CRM, entity_set, record_id)
        return None if record is None else record.fields

    def rows(self, entity_set: str) -> list[Fields]:
        return [r.fields for r in self.store.records(CRM, entity_set)]

    def answer(self, entity_set: str, name: str, build: Callable[[], Any]) -> Any:
        """A query's answer over the rows, built once while the table sees no write."""
        return self.store.answer(CRM, entity_set, name, build)

    def create(self, entity_set: str, record_id: str, fields: Fields, at: datetime,
               request_id: str | None) -> None:
        self.store.create(CRM, entity_set, record_id, fields, at=at, request_id=request_id)

    def update(self, entity_set: str, record_id: str, fields: Fields, at: datetime,
               request_id: str | None) -> None:
        self.store.update(CRM, entity_set, record_id, fields, at=at, request_id=request_id)

    def delete(self, entity_set: str, record_id: str, at: datetime, version: int,
               request_id: str | None) -> None:
        self.store.delete(CRM, entity_set, record_id, at=at, request_id=request_id)
        state(self.ctx).deleted[(entity_set, record_id)] = version

    def find_by_key(self, table: Table, key: dict[str, Any]) -> str | None:
        """The live row holding ``key``'s values. An alternate key of one column is looked up in
        an index the store keeps current on every write (an upsert by key in a table of a million
        rows costs what it does in one of ten); any other key is compared row by row."""
        if len(key) == 1 and next(iter(key)) in table.alternate_keys:
            [(name, value)] = key.items()
            found = self.store.lookup(CRM, table.entity_set, f"alternate key:{name}",
                                      lambda record: _fold(record.fields.get(name)), _fold(value))
            return found[0].id if found else None
        for fields in self.rows(table.entity_set):
            if _key_matches(fields, key):
                return fields[table.primary_id]
        return None


class Overlay(Data):
    """A changeset's view: reads see its own writes; nothing reaches the store before commit."""

    def __init__(self, base: Data) -> None:
        super().__init__(base.ctx)
        self.base = base
        self.view: dict[tuple[str, str], Fields | None] = {}
        self.ops: list[tuple[str, tuple[Any, ...]]] = []

    def get(self, entity_set: str, record_id: str) -> Fields | None:
        if (entity_set, record_id) in self.view:
            return self.view[(entity_set, record_id)]
        return self.base.get(entity_set, record_id)

    def rows(self, entity_set: str) -> list[Fields]:
        rows = [f for f in self.base.rows(entity_set)
                if (entity_set, f.get(BY_ENTITY_SET[entity_set].primary_id)) not in self.view]
        rows += [f for (es, _), f in self.view.items() if es == entity_set and f is not None]
        return rows

    def answer(self, entity_set: str, name: str, build: Callable[[], Any]) -> Any:
        return build()  # the changeset's own writes are in its rows: nothing to keep

    def create(self, entity_set: str, record_id: str, fields: Fields, at: datetime,
               request_id: str | None) -> None:
        self.view[(entity_set, record_id)] = dict(fields)
        self.ops.append(("create", (entity_set, record_id, fields, at, request_id)))

    def update(self, entity_set: str, record_id: str, fields: Fields, at: datetime,
               request_id: str | None) -> None:
        self.view[(entity_set, record_id)] = {**(self.get(entity_set, record_id) or {}), **fields}
        self.ops.append(("update", (entity_set, record_id, fields, at, request_id)))

    def delete(self, entity_set: str, record_id: str, at: datetime, version: int,
               request_id: str | None) -> None:
        self.view[(entity_set, record_id)] = None
        self.ops.append(("delete", (entity_set, record_id, at, version, request_id)))

    def find_by_key(self, table: Table, key: dict[str, Any]) -> str | None:
        for (es, record_id), fields in self.view.items():
            if es == table.entity_set and fields is not None and _key_matches(fields, key):
                return record_id
        found = self.base.find_by_key(table, key)
        if found is not None and (table.entity_set, found) in self.view:
            fields = self.view[(table.entity_set, found)]
            return found if fields is not None and _key_matches(fields, key) else None
        return found

    def commit(self) -> None:
        with self.store.lock:
            for op, args in self.ops:
                getattr(self.base, op)(*args)


def _fold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _key_matches(fields: Fields, key: dict[str, Any]) -> bool:
    return all(_fold(fields.get(name)) == _fold(value) for name, value in key.items())


# ---------------------------------------------------------------------------------------------
# Validation of a payload against the table's attributes.

def _invalid_type(table: Table, name: str, value: Any, edm: str) -> ODataError:
    return ODataError(400, BAD_PAYLOAD,
                      f"Error identified in Payload provided by the user for Entity :'{table.entity_set}', "
                      "For more information on this error please follow this help link "
                      "https://go.microsoft.com/fwlink/?linkid=2195293  ---->  InnerException : "
                      f"Microsoft.OData.ODataException: Cannot convert the literal '{value}' to the "
                      f"expected type 'Edm.{edm}' for property '{name}'.")


def _check_value(table: Table, attr: Attribute, value: Any) -> Any:
    if value is None:
        return None
    kind = attr.type
    if kind in ("String", "Memo"):
        if not isinstance(value, str):
            raise _invalid_type(table, attr.name, value, "String")
        if attr.max_length is not None and len(value) > attr.max_length:
            raise ODataError(400, TOO_LONG,
                             f"A validation error occurred. The length of the '{attr.name}' attribute "
                             f"of the '{table.logical_name}' entity exceeded the maximum allowed "
                             f"length of '{attr.max_length}'.")
        return value
    if kind in ("Integer", "BigInt", "Picklist", "State", "Status"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _invalid_type(table, attr.name, value, "Int32")
        if attr.options and value not in {v for v, _ in attr.options}:
            raise ODataError(400, OUT_OF_RANGE,
                             f"A validation error occurred. The value {value} of '{attr.name}' on "
                             f"record of type '{table.logical_name}' is outside the valid range.")
        return value
    if kind == "Boolean":
        if not isinstance(value, bool):
            raise _invalid_type(table, attr.name, value, "Boolean")
        return value
    if kind in ("Money", "Decimal", "Double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _invalid_type(table, attr.name, value, "Decimal")
        return value
    if kind == "DateTime":
        try:
            return format_datetime(parse_datetime(str(value)))
        except ValueError:
            raise _invalid_type(table, attr.name, value, "DateTimeOffset") from None
    if kind == "Uniqueidentifier":
        try:
            return str(uuid.UUID(str(value)))
        except ValueError:
            raise _invalid_type(table, attr.name, value, "Guid") from None
    return value


def parse_reference(ref: str, api_url: str, content_ids: dict[str, str]) -> tuple[str, str | dict]:
    """``/accounts(guid)``, ``accounts(guid)``, an absolute URL or ``$1`` → (entity set, key)."""
    text = content_ids.get(ref, ref) if ref.startswith("$") else ref
    if text.startswith(api_url):
        text = text[len(api_url):]
    text = text.split("/api/data/v9.2/", 1)[-1].lstrip("/")
    if "(" not in text or not text.endswith(")"):
        raise ODataError(400, BAD_PAYLOAD, f"Bad reference '{ref}' in @odata.bind.")
    entity_set, _, key = text[:-1].partition("(")
    try:
        return entity_set, parse_key(key)
    except QueryError as exc:
        raise ODataError(400, BAD_PAYLOAD, str(exc)) from None


def prepare(data: Data, table: Table, payload: dict[str, Any], creating: bool, api_url: str,
            content_ids: dict[str, str], current: Fields | None = None) -> Fields:
    """The stored fields a create/update payload asks for, or an ODataError."""
    if not isinstance(payload, dict):
        raise ODataError(400, BAD_PAYLOAD, "The request body must be a JSON object.")
    fields: Fields = {}
    lookup_types = dict((current or {}).get("_lookup_types", {}))
    for key, value in payload.items():
        if key.endswith("@odata.bind"):
            nav = key[: -len("@odata.bind")]
            if nav not in table.navigation:
                raise ODataError(400, BAD_PAYLOAD,
                                 f"An undeclared property '{nav}' which only has property "
                                 "annotations in the payload but no property value was found in "
                                 "the payload. In OData, only declared navigation properties and "
                                 "declared named streams can be represented as properties without "
                                 "values.")
            attr, target = table.navigation[nav]
            if value is None:
                fields[attr.wire_name] = None
                lookup_types.pop(attr.name, None)
                continue
            target_set, target_key = parse_reference(str(value), api_url, content_ids)
            target_table = TABLES[target]
            if target_set != target_table.entity_set:
                raise ODataError(400, BAD_PAYLOAD,
                                 f"'{nav}' binds to {target_table.entity_set}, not {target_set}.")
            target_id = (target_key if isinstance(target_key, str)
                         else data.find_by_key(target_table, target_key))
            if target_id is None or data.get(target_set, target_id) is None:
                raise not_found(target_table, str(target_key))
            fields[attr.wire_name] = target_id
            lookup_types[attr.name] = target
            continue
        if "@" in key:
            continue  # instance annotations such as @odata.type
        attr = table.by_name.get(key)
        if attr is None or attr.is_lookup:
            raise ODataError(400, BAD_PAYLOAD,
                             f"The property '{key}' does not exist on type "
                             f"'Microsoft.Dynamics.CRM.{table.logical_name}'. Make sure to only use "
                             "property names that are defined by the type or mark the type as open "
                             "type.")
        if not (attr.create if creating else attr.update):
            continue  # Dataverse ignores values for attributes not valid for this operation
        fields[attr.name] = _check_value(table, attr, value)
    if lookup_types != (current or {}).get("_lookup_types", {}):
        fields["_lookup_types"] = lookup_types
    if "fullname" in table.by_name and ({"firstname", "lastname"} & fields.keys() or creating):
        merged = {**(current or {}), **fields}
        fields["fullname"] = " ".join(p for p in (merged.get("firstname"), merged.get("lastname")) if p)
    return fields


def _check_unique_keys(data: Data, table: Table, fields: Fields, record_id: str) -> None:
    for key in table.alternate_keys:
        value = fields.get(key)
        if value is None:
            continue
        other = data.find_by_key(table, {key: value})
        if other is not None and other != record_id:
            raise ODataError(412, DUPLICATE_KEY,
                             f"A record that has the attribute values {value} already exists. The "
                             f"entity key {key}_key requires that this set of attributes contains "
                             "unique values.")


def create(data: Data, table: Table, fields: Fields, record_id: str | None = None,
           at: datetime | None = None, request_id: str | None = None) -> str:
    """Insert a prepared row; fills the id, owner, state and the system columns."""
    record_id = str(uuid.UUID(record_id or fields.get(table.primary_id) or str(uuid.uuid4())))
    if data.get(table.entity_set, record_id) is not None or \
            data.ctx.store.get(CRM, table.entity_set, record_id, include_deleted=True) is not None:
        raise ODataError(412, DUPLICATE_KEY, "Cannot insert duplicate key.")
    _check_unique_keys(data, table, fields, record_id)
    when = at or utc_now()
    row: Fields = dict(fields)
    row[table.primary_id] = record_id
    if "ownerid" in table.by_name and row.get("_ownerid_value") is None:
        row["_ownerid_value"] = APP_USER_ID
        row.setdefault("_lookup_types", {})["ownerid"] = "systemuser"
    defaults = DEFAULT_STATE.get(table.logical_name)
    if defaults is not None:
        row["statecode"] = row.get("statecode") if row.get("statecode") is not None else defaults[0]
        allowed = STATUS_OF_STATE.get(table.logical_name, {}).get(row["statecode"])
        if row.get("statuscode") is None:
            row["statuscode"] = allowed[0] if allowed else defaults[1]
        elif allowed and row["statuscode"] not in allowed:
            raise ODataError(400, BAD_PAYLOAD, f"{row['statuscode']} is not a valid status code for state code "
                                               f"{row['statecode']} on {table.logical_name}")
    row["createdon"] = row["modifiedon"] = format_datetime(when)
    row["versionnumber"] = state(data.ctx).next_version()
    data.create(table.entity_set, record_id, row, when, request_id)
    return record_id


def update(data: Data, table: Table, record_id: str, fields: Fields,
           at: datetime | None = None, request_id: str | None = None) -> None:
    _check_unique_keys(data, table, fields, record_id)
    when = at or utc_now()
    changes = dict(fields)
    changes.pop(table.primary_id, None)
    changes["modifiedon"] = format_datetime(when)
    changes["versionnumber"] = state(data.ctx).next_version()
    data.update(table.entity_set, record_id, changes, when, request_id)


def delete(data: Data, table: Table, record_id: str, request_id: str | None = None) -> None:
    data.delete(table.entity_set, record_id, utc_now(), state(data.ctx).next_version(), request_id)
