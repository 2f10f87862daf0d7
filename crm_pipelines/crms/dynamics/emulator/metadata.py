"""Table metadata as the Web API describes it, for the pipeline's mapping validation.

``EntityDefinitions(LogicalName='contact')`` (the table), ``…/Attributes`` (its columns, with
``$select`` and ``$filter``), ``…/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata``
with ``$expand=OptionSet`` (choice options with their labels) and ``…/Keys`` (alternate keys).
``$select`` is lenient: type-specific properties such as ``MaxLength`` may be selected on the
base collection, and come back only on attributes that have them.
"""

from __future__ import annotations

import re
from typing import Any

from crm_pipelines.sandbox.app import SandboxContext

from crm_pipelines.sandbox.odata import QueryError, compile_filter, parse_key, parse_select
from .records import BAD_QUERY, NOT_FOUND, ODataError
from .schema import CRM, TABLES, table as table_with_custom
from .calls import ODATA_HEADERS, Answer, Call, api_url
from .tracking import tracked



def _select_doc(doc: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
    if select is None:
        return doc
    keep = {"@odata.type", "MetadataId", *select}
    return {k: v for k, v in doc.items() if k in keep}


def entity_definitions(ctx: SandboxContext, call: Call, key: str, rest: str) -> Answer:
    try:
        parsed = parse_key(key)
    except QueryError as exc:
        raise ODataError(400, BAD_QUERY, str(exc)) from None
    if isinstance(parsed, dict):
        name = parsed.get("LogicalName")
    else:  # by MetadataId
        name = next((t.logical_name for t in TABLES.values()
                     if t.metadata()["MetadataId"] == parsed), None)
    if name not in TABLES:
        raise ODataError(404, NOT_FOUND, f"Could not find entity with name '{name or key}'.")
    table = table_with_custom(ctx.crm_settings(CRM), name)
    select = parse_select(call.query.get("$select"))
    base = f"{api_url(ctx)}/$metadata#EntityDefinitions('{name}')"
    if rest == "":
        doc = {**table.metadata(), "ChangeTrackingEnabled": tracked(ctx, name)}
        return Answer(200, {"@odata.context": f"{api_url(ctx)}/$metadata#EntityDefinitions/$entity",
                            **_select_doc(doc, select)}, dict(ODATA_HEADERS))
    if rest == "Keys":
        return Answer(200, {"@odata.context": f"{base}/Keys", "value": table.keys_metadata()},
                      dict(ODATA_HEADERS))
    parts = rest.split("/")
    if parts[0] != "Attributes" or len(parts) > 2:
        raise ODataError(404, "0x8006088a", f"Resource not found for the segment '{rest}'.")
    docs = table.attribute_metadata()
    attrs = {a.name: a for a in table.attributes}
    context = f"{base}/Attributes"
    if len(parts) == 2:
        cast = parts[1]
        docs = [d for d in docs if d["@odata.type"] == f"#{cast}"]
        context += f"/{cast}"
        expand = call.query.get("$expand", "")
        if re.search(r"\bOptionSet\b", expand):
            for d in docs:
                d["OptionSet"] = attrs[d["LogicalName"]].option_set(name)
    if call.query.get("$filter"):
        try:
            predicate = compile_filter(call.query["$filter"], lambda n: True, "AttributeMetadata")
        except QueryError as exc:
            raise ODataError(400, BAD_QUERY, str(exc)) from None
        docs = [d for d in docs if predicate(d)]
    values = [_select_doc(d, select if select is None else select + ["OptionSet"]) for d in docs]
    return Answer(200, {"@odata.context": context, "value": values}, dict(ODATA_HEADERS),
                  records=len(values))
