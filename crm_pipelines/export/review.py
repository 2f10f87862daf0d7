"""Review the field mapping against the fields the CRM describes (the crm_schema table): each
mapping is ok, a warning a person should look at, or an error that blocks the push."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from crm_pipelines.config import IntegrationConfig
from crm_pipelines.export.values import FieldSpec, Refused, coerce, kind

REVIEW_COLUMNS = ["tab", "crm_field", "source", "status", "message"]
# Enginy fields that are not text, by kind, for type checks against the CRM field.
ENGINY_KINDS = {"employees": "integer", "created_at": "datetime", "updated_at": "datetime"}


def specs(schema: pd.DataFrame, obj: str) -> dict[str, FieldSpec]:
    """The crm_schema rows of one object as FieldSpecs."""
    rows = schema[schema["object"] == obj]
    return {r["field"]: FieldSpec(r["field"], r["type"], bool(r["createable"]), bool(r["updateable"]),
                                  tuple(_list(r.get("options"))), tuple(_list(r.get("option_labels"))),
                                  _length(r.get("length")))
            for r in rows.to_dict("records")}


def _length(value: Any) -> int | None:
    """A field's length as crm_schema holds it (a schema described before lengths were kept has none)."""
    return None if value is None or pd.isna(value) else int(value)


def _list(value: Any) -> list[str]:
    """Options as the warehouse returns them: a list, an array, or JSON text."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return []
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else []
    return [str(v) for v in value]


def review_mapping(config: IntegrationConfig, schema: pd.DataFrame) -> pd.DataFrame:
    findings = []
    tabs = {"contacts": config.field_mapping.contacts, "companies": config.field_mapping.companies}
    if config.field_mapping.leads is not None:
        tabs["leads"] = config.field_mapping.leads
    objects = {obj: specs(schema, obj) for obj in set(schema["object"])}
    for tab, mappings in tabs.items():
        fields = objects.get(tab)
        if fields is None:
            findings.append({"tab": tab, "crm_field": "", "source": "", "status": "error",
                             "message": f"the CRM has no {tab} object; remove field_mapping.{tab}"})
            continue
        other = {"contacts": "companies", "leads": "companies", "companies": "contacts"}[tab]
        other_fields = objects.get(other, {})
        for m in mappings:
            source = m.enginy_field if m.type == "enginy_field" else m.type
            status, message = _review_one(m, fields, other_fields, tab, other)
            findings.append({"tab": tab, "crm_field": m.crm_field, "source": source, "status": status,
                             "message": message})
    for tab, mapping in (("contacts", config.campaign_mapping.contacts), ("leads", config.campaign_mapping.leads)):
        fields = objects.get(tab, {})
        for prop, crm_field in (mapping or {}).items():
            spec = fields.get(crm_field)
            if spec is None:
                findings.append({"tab": tab, "crm_field": crm_field, "source": prop, "status": "error",
                                 "message": f"campaign property {prop}: the CRM {tab} have no field {crm_field}"})
            elif not spec.updateable:
                findings.append({"tab": tab, "crm_field": crm_field, "source": prop, "status": "error",
                                 "message": f"campaign property {prop}: {crm_field} is read-only"})
            else:
                findings.append({"tab": tab, "crm_field": crm_field, "source": prop, "status": "ok",
                                 "message": f"{spec.type}"})
    return pd.DataFrame(findings, columns=REVIEW_COLUMNS)


def _review_one(m: Any, fields: dict[str, FieldSpec], other_fields: dict[str, FieldSpec], tab: str, other: str) -> tuple[str, str]:
    if m.option == "deactivated":
        return "ok", "deactivated: never written"
    spec = fields.get(m.crm_field)
    if spec is None:
        if m.crm_field in other_fields:
            return "error", (f"{m.crm_field} is a field of the CRM's {other}, not of its {tab}; move it to "
                             f"field_mapping.{other}")
        return "error", f"the CRM's {tab} have no field {m.crm_field}"
    if m.option == "crm_overwrites_enginy":
        return "ok", f"{spec.type}, read from the CRM only"
    if not spec.createable and not spec.updateable:
        return "error", f"{m.crm_field} is read-only in the CRM"
    if not spec.createable:
        return "error", f"{m.crm_field} cannot be set on a new record; use sync mode update_only or remove it"
    if m.option in ("enginy_overwrites_crm", "bidirectional", "sync_if_empty") and not spec.updateable:
        return "warning", f"{m.crm_field} can be set on new records only; matched records keep their value"
    target = kind(spec.type)
    if m.type in ("fixed_value", "engagement"):
        try:
            coerce(spec, m.value)
        except Refused as refused:
            return "error", f"the value {m.value!r} does not fit: {refused}"
    source = ENGINY_KINDS.get(getattr(m, "enginy_field", ""), "text")
    if target in ("picklist", "multipicklist") and m.type in ("enginy_field", "manual_export"):
        allowed = ", ".join(spec.options[:15]) + (" …" if len(spec.options) > 15 else "")
        return "warning", f"text into a picklist: only these internal values are accepted: {allowed}"
    if target in ("number", "integer") and source == "text" and m.type == "enginy_field":
        return "error", f"text field {m.enginy_field} into a {spec.type} field"
    if target == "boolean" and m.type == "enginy_field":
        return "error", f"{m.enginy_field} is not true/false but {m.crm_field} is a {spec.type}"
    if target == "reference":
        return "warning", f"{m.crm_field} holds record ids; the value must be an id of the right object"
    return "ok", spec.type
