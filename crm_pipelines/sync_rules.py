"""Inbound sync rules: which CRM records enter the snapshot at all.

As in the ZoomInfo Engage seed ("Title contains Sales OR Annual Revenue > 1000000"), rules are
an OR of AND-groups of conditions on the CRM's own fields. They are applied to the folded
snapshot, so a record that stops matching leaves the snapshot on its next change.
"""

from typing import Any, Literal

import orjson
import pandas as pd
from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

Operator = Literal["equals", "not_equals", "contains", "not_contains", "starts_with", "greater_than",
                   "greater_or_equal", "less_than", "less_or_equal", "in", "is_empty", "is_not_empty"]
_UNARY = {"is_empty", "is_not_empty"}


def config_problem(message: str, fix: str) -> PydanticCustomError:
    """A problem in the integration config, with its fix; every config error reads alike."""
    return PydanticCustomError("crm_config", "{message} — fix: {fix}", {"message": message, "fix": fix})


class SyncCondition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str  # the CRM's own field name (Title, AnnualRevenue, jobtitle, …)
    operator: Operator
    value: Any = None

    @model_validator(mode="after")
    def _value_given(self) -> "SyncCondition":
        if self.operator not in _UNARY and self.value is None:
            raise config_problem(f"operator {self.operator} needs a value", "add value: …")
        if self.operator == "in" and not isinstance(self.value, list):
            raise config_problem("operator in needs a list value", "write value: [a, b]")
        return self


SyncRules = list[list[SyncCondition]]


def _field(raw: pd.Series, name: str) -> pd.Series:
    lowered = name.lower()

    def lookup(record: Any) -> Any:
        if isinstance(record, str):  # as the warehouse keeps it, and as some pulls hand it over
            record = orjson.loads(record) if record else None
        if not isinstance(record, dict):
            return None
        if name in record:
            return record[name]
        # Salesforce and Dataverse field names are case-insensitive.
        return next((v for k, v in record.items() if k.lower() == lowered), None)

    return raw.map(lookup)


def _condition(values: pd.Series, cond: SyncCondition) -> pd.Series:
    empty = values.isna() | (values.astype(str).str.strip() == "")
    if cond.operator == "is_empty":
        return empty
    if cond.operator == "is_not_empty":
        return ~empty
    if cond.operator in {"greater_than", "greater_or_equal", "less_than", "less_or_equal"}:
        numbers = pd.to_numeric(values, errors="coerce")
        bound = float(cond.value)
        result = {"greater_than": numbers > bound, "greater_or_equal": numbers >= bound,
                  "less_than": numbers < bound, "less_or_equal": numbers <= bound}[cond.operator]
        return result.fillna(False).astype(bool)
    text = values.astype(object).where(~empty, "").astype(str).str.casefold()
    if cond.operator == "in":
        return text.isin([str(v).casefold() for v in cond.value]) & ~empty
    wanted = str(cond.value).casefold()
    return {
        "equals": (text == wanted) & ~empty,
        "not_equals": text != wanted,
        "contains": text.str.contains(wanted, regex=False) & ~empty,
        "not_contains": ~text.str.contains(wanted, regex=False),
        "starts_with": text.str.startswith(wanted) & ~empty,
    }[cond.operator]


def matches(raw: pd.Series, rules: SyncRules | None) -> pd.Series:
    """Which records (their ``raw`` CRM fields) the rules let in; no rules: all of them."""
    if not rules:
        return pd.Series(True, index=raw.index)
    result = pd.Series(False, index=raw.index)
    for group in rules:
        group_result = pd.Series(True, index=raw.index)
        for cond in group:
            group_result &= _condition(_field(raw, cond.field), cond).to_numpy()
        result |= group_result
    return result
