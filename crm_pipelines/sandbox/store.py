"""State shared by every emulated CRM: records with their full history.

Tests prove "created exactly once" from the history, so every write is kept, never
overwritten. Records are plain dicts of the CRM's own field names; each CRM module decides
its ids, its timestamp field names and its wire shapes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Hashable

import orjson

# Answers kept per table by Store.answer (a pull's pages, a delta's pages, a windowed read…).
ANSWERS_KEPT = 4


def utc_now() -> datetime:
    # Millisecond precision, as the CRMs report it; equal timestamps across records are real
    # and the connectors must cope with them.
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=(now.microsecond // 1000) * 1000)


@dataclass(slots=True)
class Change:
    op: str  # "create" | "update" | "delete" | "undelete"
    at: datetime
    fields: dict[str, Any]
    request_id: str | None = None


@dataclass(slots=True)
class Record:
    id: str
    fields: dict[str, Any]
    created_at: datetime
    modified_at: datetime
    is_deleted: bool = False
    history: list[Change] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "fields": self.fields,
            "created_at": self.created_at.isoformat(),
            "modified_at": self.modified_at.isoformat(),
            "is_deleted": self.is_deleted,
            "history": [
                {"op": c.op, "at": c.at.isoformat(), "fields": c.fields, "request_id": c.request_id}
                for c in self.history
            ],
        }


class _Index:
    """A value of each record (its email, its external id) → the records holding it."""

    def __init__(self, key: Callable[[Record], Hashable | None], records: list[Record]) -> None:
        self.key = key
        self.ids: dict[Hashable, dict[str, None]] = {}  # in the order the records came to hold it
        self.values: dict[str, Hashable] = {}
        for record in records:
            self.note(record)

    def note(self, record: Record) -> None:
        old, new = self.values.get(record.id), self.key(record)
        if old == new:
            return
        if old is not None:
            self.ids[old].pop(record.id, None)
        if new is None:
            self.values.pop(record.id, None)
        else:
            self.values[record.id] = new
            self.ids.setdefault(new, {})[record.id] = None


class Store:
    """Records per (crm, object), thread-safe, optionally persisted to a JSON file."""

    def __init__(self, clock: Callable[[], datetime] = utc_now) -> None:
        self._lock = threading.RLock()
        self._objects: dict[tuple[str, str], dict[str, Record]] = {}
        # (crm, object, index name) → an index kept current by every write, built on first look-up.
        self._indexes: dict[tuple[str, str, str], _Index] = {}
        self.clock = clock
        # Bumped whenever records vanish or are replaced wholesale, so indexes built on the
        # store by a CRM module know to rebuild.
        self.generation = 0
        # (crm, object) → its record ids in a CRM's list order and their sort keys, until a record is added.
        self._orders: dict[tuple[str, str], tuple[list[Any], list[str]]] = {}
        # (crm, object) → writes so far; (crm, object, name) → an answer and the writes it was built at.
        self._writes: dict[tuple[str, str], int] = {}
        self._answers: dict[tuple[str, str, str], tuple[int, Any]] = {}

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    def _table(self, crm: str, obj: str) -> dict[str, Record]:
        return self._objects.setdefault((crm, obj), {})

    def create(self, crm: str, obj: str, record_id: str, fields: dict[str, Any],
               at: datetime | None = None, request_id: str | None = None) -> Record:
        with self._lock:
            table = self._table(crm, obj)
            if record_id in table:
                raise KeyError(f"{crm}/{obj}/{record_id} exists already")
            when = at or self.clock()
            # The record's fields and its create change share one dict until the first update
            # (copy on write): a million seeded records, most never written again, hold their
            # fields once.
            values = dict(fields)
            record = Record(record_id, values, when, when)
            record.history.append(Change("create", when, values, request_id))
            table[record_id] = record
            self._orders.pop((crm, obj), None)
            self._noted(crm, obj, record)
            return record

    def update(self, crm: str, obj: str, record_id: str, fields: dict[str, Any],
               at: datetime | None = None, request_id: str | None = None) -> Record:
        with self._lock:
            record = self._table(crm, obj)[record_id]
            when = at or self.clock()
            if record.history and record.history[0].fields is record.fields:
                record.fields = dict(record.fields)
            record.fields.update(fields)
            record.modified_at = when
            record.history.append(Change("update", when, dict(fields), request_id))
            self._noted(crm, obj, record)
            return record

    def delete(self, crm: str, obj: str, record_id: str, at: datetime | None = None,
               request_id: str | None = None) -> Record:
        """Soft delete: the record stays (for queryAll / archived listings / history)."""
        return self._set_deleted(crm, obj, record_id, True, at, request_id)

    def undelete(self, crm: str, obj: str, record_id: str, at: datetime | None = None,
                 request_id: str | None = None) -> Record:
        return self._set_deleted(crm, obj, record_id, False, at, request_id)

    def _set_deleted(self, crm: str, obj: str, record_id: str, deleted: bool, at: datetime | None,
                     request_id: str | None) -> Record:
        with self._lock:
            record = self._table(crm, obj)[record_id]
            when = at or self.clock()
            record.is_deleted = deleted
            record.modified_at = when
            record.history.append(Change("delete" if deleted else "undelete", when, {}, request_id))
            self._noted(crm, obj, record)
            return record

    def get(self, crm: str, obj: str, record_id: str, include_deleted: bool = False) -> Record | None:
        with self._lock:
            record = self._table(crm, obj).get(record_id)
            if record is None or (record.is_deleted and not include_deleted):
                return None
            return record

    def records(self, crm: str, obj: str, include_deleted: bool = False) -> list[Record]:
        """A snapshot list, safe to iterate while other requests write."""
        with self._lock:
            return [r for r in self._table(crm, obj).values() if include_deleted or not r.is_deleted]

    def ordered(self, crm: str, obj: str, key: Callable[[str], Any]) -> tuple[list[Any], list[str]]:
        """The object's record ids sorted by ``key`` of the id, and their keys (for bisect): a
        list endpoint pages through them by cursor instead of sorting the table for every page —
        a million-record pull was a sort of the million per page. Kept until a record is added."""
        with self._lock:
            order = self._orders.get((crm, obj))
            if order is None:
                ids = sorted(self._table(crm, obj), key=key)
                order = self._orders[(crm, obj)] = ([key(i) for i in ids], ids)
            return order

    def lookup(self, crm: str, obj: str, name: str, key: Callable[[Record], Hashable | None],
               wanted: Hashable) -> list[Record]:
        """The live records whose ``key`` is ``wanted``, from the index ``name`` (``key`` builds it
        on first use; the store keeps it current on every write), so that an upsert by a unique
        value costs the same in a table of a million records as in one of ten. A record changed
        behind the store's back is checked again rather than trusted."""
        with self._lock:
            index = self._indexes.get((crm, obj, name))
            if index is None:
                index = self._indexes[(crm, obj, name)] = _Index(key, list(self._table(crm, obj).values()))
            table = self._table(crm, obj)
            found = (table[i] for i in index.ids.get(wanted, {}) if i in table)
            return [r for r in found if not r.is_deleted and key(r) == wanted]

    def answer(self, crm: str, obj: str, name: str, build: Callable[[], Any]) -> Any:
        """``build()``'s value, kept while the object sees no write: a list endpoint's pages share
        one filtered, sorted answer instead of filtering and sorting the table for each page (a
        million-record pull was two hundred sorts of the million). A few answers a table are kept."""
        with self._lock:
            writes = self._writes.get((crm, obj), 0)
            kept = self._answers.get((crm, obj, name))
            if kept is not None and kept[0] == writes:
                return kept[1]
        value = build()
        with self._lock:
            stale = [k for k in self._answers if k[:2] == (crm, obj) and k[2] != name]
            for k in stale[:-(ANSWERS_KEPT - 1)]:
                del self._answers[k]
            self._answers[(crm, obj, name)] = (writes, value)
        return value

    def _noted(self, crm: str, obj: str, record: Record) -> None:
        """A write of ``record``: the table's indexes follow it, and its kept answers expire."""
        self._writes[(crm, obj)] = self._writes.get((crm, obj), 0) + 1
        for (c, o, _), index in self._indexes.items():
            if (c, o) == (crm, obj):
                index.note(record)

    def objects(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._objects)

    def reset(self) -> None:
        with self._lock:
            self._objects.clear()
            self._indexes.clear()
            self._orders.clear()
            self._answers.clear()
            self.generation += 1

    # Persistence: one JSON document per line, a record with its history each, written and read a
    # record at a time so that saving a million records never holds a second copy of the store.
    def save(self, path: str | Path) -> None:
        tmp = Path(path).with_suffix(".tmp")
        with self._lock, tmp.open("wb") as out:
            for (crm, obj), table in self._objects.items():
                for record in table.values():
                    out.write(orjson.dumps({"object": f"{crm}/{obj}", **record.as_json()}, default=str))
                    out.write(b"\n")
        tmp.replace(path)

    def load(self, path: str | Path) -> None:
        with self._lock, Path(path).open("rb") as lines:
            self._objects.clear()
            self._indexes.clear()
            self._orders.clear()
            self._answers.clear()
            self.generation += 1
            for line in lines:
                row = orjson.loads(line)
                crm, obj = row["object"].split("/", 1)
                history = [Change(c["op"], datetime.fromisoformat(c["at"]), c["fields"], c.get("request_id"))
                           for c in row["history"]]
                fields = row["fields"]
                if history and history[0].fields == fields:
                    fields = history[0].fields  # shared until the next update, as create() leaves it
                self._table(crm, obj)[row["id"]] = Record(
                    row["id"], fields, datetime.fromisoformat(row["created_at"]),
                    datetime.fromisoformat(row["modified_at"]), row["is_deleted"], history)
