"""CRM search: filterGroups (OR of ANDed filters), one sort, a free-text query, offset paging.

Values compare by the property's type: numbers as numbers, dates and datetimes as epoch
milliseconds (HubSpot accepts either milliseconds or ISO strings in a filter), everything else
as case-insensitive text. Results are capped at 10,000 per query, as HubSpot's are.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from crm_pipelines.sandbox.store import Record

from .records import HubSpotError, value
from .schema import DEFAULT_MODIFIED, MODIFIED, Property, Schema, parse_time

MAX_PAGE = 200
RESULT_CAP = 10_000
# HubSpot's limits since its search change of 26 August 2024: five filter groups (ORed), ten
# filters in a group (ANDed), twenty-five filters in all, a hundred values in one IN or NOT_IN.
MAX_GROUPS, MAX_FILTERS_PER_GROUP, MAX_FILTERS, MAX_VALUES = 5, 10, 25, 100
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
    if operator == "BETWEEN" and (wanted is None or high is None):
        raise _invalid(f"Filter on {name} with operator BETWEEN needs a value and a highValue")
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


def indexed(records: list[Record], lag_seconds: float, now: datetime) -> list[Record]:
    """The records search can see. HubSpot's search index follows writes by a few seconds while
    reads by id see them at once, so with a lag set, a record created or changed less than
    ``lag_seconds`` ago is not found by search yet (setting ``search_lag_seconds``; 0 by default,
    read-your-writes, so only the tests about the lag wait on it)."""
    if not lag_seconds:
        return records
    cutoff = now - timedelta(seconds=lag_seconds)
    return [r for r in records if r.modified_at <= cutoff]


def _integer(body: dict[str, Any], name: str, default: int) -> int:
    raw = body.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise _invalid(f"{name} must be an integer; got {raw!r}") from None


def _filter_groups(body: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """The request's filters by group, refused with HubSpot's 400 past its limits or when they
    are not the lists of objects HubSpot expects (a malformed body is the caller's error, not
    the server's)."""
    groups = body.get("filterGroups") or []
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise _invalid("filterGroups must be a list of objects, each with a list of filters")
    if len(groups) > MAX_GROUPS:
        raise _invalid(f"Too many filter groups: {len(groups)}; a search takes at most {MAX_GROUPS}")
    filters = [g.get("filters") or [] for g in groups]
    if not all(isinstance(f, list) and all(isinstance(one, dict) for one in f) for f in filters):
        raise _invalid("Each filter group's filters must be a list of objects")
    for i, group in enumerate(filters):
        if len(group) > MAX_FILTERS_PER_GROUP:
            raise _invalid(f"Too many filters in filter group {i}: {len(group)}; "
                           f"a group takes at most {MAX_FILTERS_PER_GROUP}")
    total = sum(len(group) for group in filters)
    if total > MAX_FILTERS:
        raise _invalid(f"Too many filters: {total}; a search takes at most {MAX_FILTERS} across its groups")
    for spec in (one for group in filters for one in group):
        values = spec.get("values")
        if values is not None and not isinstance(values, list):
            raise _invalid(f"values of the filter on {spec.get('propertyName')} must be a list")
        if str(spec.get("operator", "")).upper() in ("IN", "NOT_IN") and len(values or []) > MAX_VALUES:
            raise _invalid(f"Too many values in the {str(spec['operator']).upper()} filter on "
                           f"{spec.get('propertyName')}: {len(values or [])}; at most {MAX_VALUES}")
    return filters


def search(obj: str, schema: Schema, records: list[Record], body: dict[str, Any]) -> tuple[list[Record], int, int]:
    """(the page of records, the total matching, the offset after this page or -1 at the end)."""
    groups = _filter_groups(body)
    limit = _integer(body, "limit", 10)
    if not 0 < limit <= MAX_PAGE:
        raise _invalid(f"limit must be between 1 and {MAX_PAGE}; got {limit}")
    after = _integer(body, "after", 0)
    if after + limit > RESULT_CAP:
        # HubSpot refuses to page past its 10,000th result; narrow the filters instead.
        raise _invalid("There was a problem with the request. Search can page through at most "
                       f"{RESULT_CAP:,} results (after={after}, limit={limit}); narrow the filters")
    tests = [[_filter(obj, schema, f) for f in group] for group in groups]
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
