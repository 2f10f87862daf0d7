"""Running a checked SOQL plan over the store: rows as REST JSON records or Bulk CSV cells."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from crm_pipelines.sandbox.app import SandboxContext
from crm_pipelines.crms.salesforce.emulator import soql
from crm_pipelines.crms.salesforce.emulator.common import schema
from crm_pipelines.crms.salesforce.emulator.schema import CRM, INTEGRATION_USER_ID, OBJECT_BY_PREFIX, Field
from crm_pipelines.crms.salesforce.emulator.values import attributes, raw_value, to_csv, to_json
from crm_pipelines.sandbox.store import Record


class Reader:
    """Field access along relationship paths, with the schema lookups cached for one request."""

    def __init__(self, ctx: SandboxContext, version: str) -> None:
        self.ctx, self.version = ctx, version
        self._schemas: dict[str, Any] = {}
        self._paths: dict[tuple[str, tuple[str, ...]], list[tuple[str, Field]]] = {}

    def schemas(self, obj: str) -> Any:
        if obj not in self._schemas:
            self._schemas[obj] = schema(self.ctx, obj)
        return self._schemas[obj]

    def steps(self, obj: str, path: list[str]) -> list[tuple[str, Field]]:
        key = (obj, tuple(path))
        if key not in self._paths:
            self._paths[key] = soql.resolve(self.schemas, obj, path)
        return self._paths[key]

    def related(self, ref: Field, value: Any) -> tuple[str, Record] | None:
        if not value:
            return None
        target = OBJECT_BY_PREFIX.get(str(value)[:3])
        if target not in ref.reference_to:
            return None
        record = self.ctx.store.get(CRM, target, str(value))
        if record is None and value == INTEGRATION_USER_ID:
            return None
        return (target, record) if record is not None else None

    def getter(self, obj: str) -> soql.Getter:
        def get(record: Record, path: list[str]) -> Any:
            current_obj, current = obj, record
            steps = self.steps(obj, path)
            for i, (_, f) in enumerate(steps):
                value = raw_value(current_obj, current, f.name)
                if i == len(steps) - 1:
                    return value
                hop = self.related(f, value)
                if hop is None:
                    return None
                current_obj, current = hop
            return None
        return get

    def run(self, plan: soql.Plan, include_deleted: bool, now: datetime) -> list[Record]:
        q = plan.query
        get = self.getter(q.object)
        rows = self.ctx.store.records(CRM, q.object, include_deleted=include_deleted)
        if not plan.schema.has_is_deleted:
            rows = [r for r in rows if not r.is_deleted]
        keep = soql.matcher(q.where, self.schemas, q.object, get, now)
        rows = [r for r in rows if keep(r)]
        rows.sort(key=lambda r: (r.created_at, r.id))  # the org's natural order: by insertion
        if q.order:
            rows = soql.sort(rows, q.order, self.schemas, q.object, get)
        if q.offset:
            rows = rows[q.offset:]
        if q.limit is not None:
            rows = rows[:q.limit]
        return rows

    def to_json(self, plan: soql.Plan, record: Record) -> dict[str, Any]:
        obj = plan.query.object
        out: dict[str, Any] = {"attributes": attributes(self.version, obj, record.id)}
        for canonical, steps in plan.select:
            self._put(out, obj, record, steps, canonical)
        return out

    def _put(self, out: dict[str, Any], obj: str, record: Record, steps: list[tuple[str, Field]],
             canonical: list[str]) -> None:
        f = steps[0][1]
        if len(steps) == 1:
            out[f.name] = to_json(f, raw_value(obj, record, f.name))
            return
        name = canonical[0]
        if name in out and out[name] is None:
            return
        hop = self.related(f, raw_value(obj, record, f.name))
        if hop is None:
            out[name] = None
            return
        target_obj, target = hop
        nested = out.setdefault(name, {"attributes": attributes(self.version, target_obj, target.id)})
        self._put(nested, target_obj, target, steps[1:], canonical[1:])

    def to_csv_cells(self, plan: soql.Plan, record: Record) -> list[str]:
        get = self.getter(plan.query.object)
        return [to_csv(steps[-1][1], get(record, canonical)) for canonical, steps in plan.select]

    def record_json(self, obj: str, record: Record, fields: list[str] | None = None) -> dict[str, Any]:
        """A record as GET /sobjects/{obj}/{id} answers it: every field, or the ?fields= subset."""
        sch = self.schemas(obj)
        chosen = [sch.lookup(n) for n in fields] if fields else list(sch.fields.values())
        out: dict[str, Any] = {"attributes": attributes(self.version, obj, record.id)}
        for f in chosen:
            if f is not None:
                out[f.name] = to_json(f, raw_value(obj, record, f.name))
        return out
