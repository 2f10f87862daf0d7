"""CRM search: filterGroups (OR of ANDed filters), one sort, a free-text query, offset paging.

Values compare by the property's type: numbers as numbers, dates and datetimes as epoch
milliseconds (HubSpot accepts either milliseconds or ISO strings in a filter), everything else
as case-insensitive text. Results are capped at 10,000 per query, as HubSpot's are.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from crm_pipelines.sandbox.store import Record

from .records import HubSpotError, value
from .schema import DEFAULT_MODIFIED, MODIFIED, Property, Schema, parse_time

MAX_PAGE = 200
RESULT_CAP = 10_000
MAX_GROUPS, MAX_FILTERS_PER_GROUP, MAX_FILTERS = 5, 6, 18
OPERATORS = {"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY",
             "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"}
# Free-text `query` looks at these, as HubSpot's default searchable properties.
QUERY_PROPERTIES = {"contacts": ("firstname", "lastname", "email", "phone", "company"),
                    "companies": ("name", "domain", "website", "phone")}


def _invalid(message: str) -> HubSpotError:
    return HubSpotError(400, "VALIDATION_ERROR", message)


def _key(prop: Property | None, raw: Any) -> Any:
    """A comparable form of a value of ``prop``; None when there is no value."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, datetime):
        return int(raw.timestamp() * 1000)
    if prop is not None and prop.type == "number":
        try:
            return Decimal(str(raw))
        except InvalidOperation:
            raise _invalid(f"{raw} is not a number for {prop.name}") from None
    if prop is not None and prop.type in ("date", "datetime"):
        try:
            when = parse_time(raw)
        except ValueError:
            raise _invalid(f"{raw} is not a date or millisecond timestamp for {prop.name}") from None
        return int(when.timestamp() * 1000) if when else None
    return str(raw).lower()


def _stored(obj: str, record: Record, prop: Property) -> Any:
    """The record's value of ``prop``, system dates straight from the record (searches over
    the last-modified date are the hot path of every incremental pull)."""
    if prop.name in MODIFIED.get(obj, DEFAULT_MODIFIED):
        return record.modified_at
    if prop.name in ("createdate", "hs_createdate"):
        return record.created_at
    return value(obj, record, prop.name)


def _filter(obj: str, schema: Schema, spec: dict[str, Any]):
    name, operator = spec.get("propertyName"), str(spec.get("operator", "EQ")).upper()
    if operator not in OPERATORS:
        raise _invalid(f"Unknown operator {operator!r}; one of {', '.join(sorted(OPERATORS))}")
    prop = schema.get(name or "")
    if prop is None:
        raise _invalid(f"There was a problem with the request: property {name!r} does not exist on {obj}")
    wanted = _key(prop, spec.get("value"))
    values = [_key(prop, v) for v in spec.get("values") or []]
    high = _key(prop, spec.get("highValue"))
    if operator in ("EQ", "NEQ", "LT", "LTE", "GT", "GTE", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN") and wanted is None:
        raise _invalid(f"Filter on {name} with operator {operator} needs a value")
    token = re.compile("^" + ".*".join(map(re.escape, str(spec.get("value", "")).lower().split("*"))) + "$")

    def test(record: Record) -> bool:
        have = _key(prop, _stored(obj, record, prop))
        if operator == "HAS_PROPERTY":
            return have is not None
        if operator == "NOT_HAS_PROPERTY":
            return have is None
        if operator == "NEQ":
            return have != wanted
        if operator == "NOT_IN":
            return have not in values
        if operator == "NOT_CONTAINS_TOKEN":
            return have is None or not _tokens_match(token, have)
        if have is None:
            return False
        if operator == "EQ":
            return have == wanted
        if operator == "IN":
            return have in values
        if operator == "CONTAINS_TOKEN":
            return _tokens_match(token, have)
        if operator == "BETWEEN":
            return wanted <= have <= high
        return {"LT": have < wanted, "LTE": have <= wanted, "GT": have > wanted, "GTE": have >= wanted}[operator]

    return test


def _tokens_match(token: re.Pattern[str], have: Any) -> bool:
    text = str(have)
    return bool(token.match(text)) or any(token.match(part) for part in re.split(r"[\s@.,;:/_-]+", text) if part)


def search(obj: str, schema: Schema, records: list[Record], body: dict[str, Any]) -> tuple[list[Record], int, int]:
    """(the page of records, the total matching, the offset after this page or -1 at the end)."""
    groups = body.get("filterGroups") or []
    if len(groups) > MAX_GROUPS:
        raise _invalid(f"Too many filter groups: {len(groups)}; at most {MAX_GROUPS}")
    if any(len(g.get("filters") or []) > MAX_FILTERS_PER_GROUP for g in groups) or sum(
            len(g.get("filters") or []) for g in groups) > MAX_FILTERS:
        raise _invalid(f"Too many filters: at most {MAX_FILTERS_PER_GROUP} per group and {MAX_FILTERS} in all")
    limit = int(body.get("limit") or 10)
    if not 0 < limit <= MAX_PAGE:
        raise _invalid(f"limit must be between 1 and {MAX_PAGE}; got {limit}")
    after = int(body.get("after") or 0)
    if after + limit > RESULT_CAP:
        # HubSpot refuses to page past its 10,000th result; narrow the filters instead.
        raise _invalid("There was a problem with the request. Search can page through at most "
                       f"{RESULT_CAP:,} results (after={after}, limit={limit}); narrow the filters")
    tests = [[_filter(obj, schema, f) for f in g.get("filters") or []] for g in groups]
    query = str(body.get("query") or "").strip().lower()
    matched = [r for r in records
               if (not tests or any(all(t(r) for t in group) for group in tests))
               and (not query or any(query in (value(obj, r, p) or "").lower()
                                     for p in QUERY_PROPERTIES.get(obj, ())))]
    sorts = body.get("sorts") or []
    if len(sorts) > 1:
        raise _invalid("Search takes one sort")
    matched.sort(key=lambda r: int(r.id))
    if sorts:
        sort = sorts[0] if isinstance(sorts[0], dict) else _sort_from_string(str(sorts[0]))
        prop = schema.get(sort.get("propertyName", ""))
        if prop is None:
            raise _invalid(f"Cannot sort by {sort.get('propertyName')!r}: no such property on {obj}")
        descending = str(sort.get("direction", "ASCENDING")).upper() == "DESCENDING"
        keys = {r.id: _key(prop, _stored(obj, r, prop)) for r in matched}
        present = [r for r in matched if keys[r.id] is not None]
        missing = [r for r in matched if keys[r.id] is None]
        # Equal values keep id order, so paging with a stable sort never repeats or skips.
        present.sort(key=lambda r: keys[r.id], reverse=descending)
        matched = present + missing
    page = matched[after:after + limit]
    following = after + limit if after + limit < len(matched) else -1
    return page, len(matched), following


def _sort_from_string(text: str) -> dict[str, str]:
    return ({"propertyName": text[1:], "direction": "DESCENDING"} if text.startswith("-")
            else {"propertyName": text, "direction": "ASCENDING"})
