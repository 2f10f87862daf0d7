"""Inbound sync rules: an OR of AND-groups over the CRM's own fields decides what is synced."""

import pandas as pd
import pytest
from pydantic import ValidationError

from crm_pipelines.sync_rules import SyncCondition, matches

RAW = pd.Series([
    {"Title": "Head of Sales", "AnnualRevenue": 500_000, "Country": "ES"},
    {"Title": "CTO", "AnnualRevenue": 5_000_000, "Country": "DE"},
    {"Title": "CFO", "AnnualRevenue": None, "Country": "FR"},
    {"title": "sales rep", "AnnualRevenue": "2000000", "Country": ""},
])


def rule(field: str, operator: str, value=None) -> SyncCondition:
    return SyncCondition(field=field, operator=operator, value=value)


def test_the_seed_example_title_contains_sales_or_revenue_above_a_million() -> None:
    rules = [[rule("Title", "contains", "Sales")], [rule("AnnualRevenue", "greater_than", 1_000_000)]]
    assert matches(RAW, rules).tolist() == [True, True, False, True]


def test_conditions_in_one_group_must_all_hold() -> None:
    rules = [[rule("Title", "contains", "sales"), rule("AnnualRevenue", "greater_or_equal", 1_000_000)]]
    assert matches(RAW, rules).tolist() == [False, False, False, True]


def test_no_rules_let_every_record_in() -> None:
    assert matches(RAW, None).all() and matches(RAW, []).all()


@pytest.mark.parametrize("operator, value, expected", [
    ("equals", "es", [True, False, False, False]),
    ("not_equals", "ES", [False, True, True, True]),
    ("in", ["DE", "FR"], [False, True, True, False]),
    ("is_empty", None, [False, False, False, True]),
    ("is_not_empty", None, [True, True, True, False]),
    ("starts_with", "d", [False, True, False, False]),
])
def test_text_operators_ignore_case(operator, value, expected) -> None:
    assert matches(RAW, [[rule("Country", operator, value)]]).tolist() == expected


def test_a_missing_or_non_numeric_value_never_passes_a_numeric_bound() -> None:
    assert matches(RAW, [[rule("AnnualRevenue", "less_than", 10_000_000)]]).tolist() == [True, True, False, True]


def test_a_condition_without_the_value_its_operator_needs_is_refused() -> None:
    with pytest.raises(ValidationError, match="needs a value"):
        rule("Title", "contains")
    with pytest.raises(ValidationError, match="needs a list"):
        rule("Country", "in", "ES")
