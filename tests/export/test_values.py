"""A batch coerces and compares its values a column at a time: each cell ends as ``coerce`` and
``same`` decide for it alone — the same value, the same refusal, the same "no change"."""

import numpy as np
import pandas as pd
import pytest

from crm_pipelines.export.values import (FieldSpec, Refused, coerce, coerce_column, empty_column, is_empty, same,
                                         same_column)

SPECS = [FieldSpec("Title", "string", length=5), FieldSpec("Email", "email"),
         FieldSpec("LeadSource", "picklist", options=("Web", "Enginy_Outbound"),
                   option_labels=("Web", "Enginy Outbound")),
         FieldSpec("Employees", "int"), FieldSpec("Revenue", "currency"), FieldSpec("OptOut", "boolean"),
         FieldSpec("Birthdate", "date"), FieldSpec("Met__c", "datetime"),
         FieldSpec("Tags__c", "multipicklist", options=("a", "b"))]
TEXTS = ["Ada", " CTO ", "", "   ", None, "a longer title", "ada@acme.com", "Ada@Acme.COM", "ada@", "Web",
         "enginy outbound", "120", "120.0", "1,200", "2.5", "true", "No", "2026-03-01T10:30:00+01:00", "2026-03-01",
         "a;b", "a,c", "12345678901234567890", "12345678901234567891"]
OTHERS = [np.nan, pd.NA, pd.NaT, 5, 5.0, 2.5, True, False, 1e20, pd.Timestamp("2026-01-02 03:04:05.678", tz="UTC")]


def one_by_one(spec: FieldSpec, values) -> list:
    out = []
    for value in values:
        try:
            out.append((coerce(spec, value), None))
        except Refused as refused:
            out.append((None, str(refused)))
    return out


def columns():
    yield pd.Series(TEXTS, dtype=object)
    yield pd.Series(TEXTS, dtype="str")  # how the warehouse hands text back
    yield pd.Series(TEXTS + OTHERS, dtype=object)  # mixed types: each cell on its own
    stamps = pd.Series(pd.to_datetime(["2026-01-02 03:04:05.678", None, "2026-12-31 23:59:59"], format="mixed"))
    yield stamps
    yield stamps.dt.tz_localize("Europe/Madrid")
    yield pd.Series([1, None, 120, 3], dtype="Int32")


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.type)
def test_a_column_is_coerced_as_each_of_its_values_would_be(spec) -> None:
    for values in columns():
        coerced, refused = coerce_column(spec, values)
        got = [(None if pd.isna(c) else c, r) for c, r in zip(coerced, refused)]
        assert got == one_by_one(spec, values), values.dtype


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.type)
def test_a_column_of_crm_values_is_the_same_as_the_new_ones_where_each_pair_is(spec) -> None:
    held = pd.Series(TEXTS + OTHERS, dtype=object)
    for shift in range(1, 6):
        new, _ = coerce_column(spec, pd.Series(np.roll(held.to_numpy(object), shift), dtype=object))
        assert same_column(held, new, spec).tolist() == [same(h, n, spec) for h, n in zip(held, new)]
    new, _ = coerce_column(spec, held)
    assert same_column(held, new, spec).tolist() == [same(h, n, spec) for h, n in zip(held, new)]


def test_empty_values_are_found_in_any_column() -> None:
    for values in columns():
        assert empty_column(values).tolist() == [is_empty(v) for v in values]
