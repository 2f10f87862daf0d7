"""The gates in front of the push: each one fails on the batch it exists to stop."""

import pandas as pd
import pytest

from crm_pipelines.export.gates import expectation_suite_gates, rejection_gate, schema_gate
from crm_pipelines.frames import to_json


def batch(*rows: dict) -> pd.DataFrame:
    base = {"crm_id": None, "reason": None, "outcome": "new", "match_key": None, "fields": {}}
    return pd.DataFrame([{**base, **r} for r in rows])


GOOD = batch({"enginy_id": "e1", "action": "create", "match_key": "ada@acme.com",
              "fields": {"LastName": "Lovelace", "Email": "ada@acme.com", "LeadSource": "Web"}},
             {"enginy_id": "e2", "action": "update", "crm_id": "c2", "outcome": "matched",
              "fields": {"Website": "https://acme.com"}},
             {"enginy_id": "e3", "action": "skip", "reason": "nothing to change", "outcome": "matched"})


def failed(gates) -> set[str]:
    return {g.name for g in gates if not g.passed}


def test_a_clean_batch_passes_every_gate() -> None:
    assert schema_gate(GOOD).passed and rejection_gate(GOOD, 0.05).passed
    assert failed(expectation_suite_gates(GOOD, previous_rows=3)) == set()


def test_the_schema_gate_stops_an_update_without_a_record_or_a_skip_without_a_reason() -> None:
    bad = batch({"enginy_id": "e1", "action": "update", "fields": {}},
                {"enginy_id": "e2", "action": "skip", "fields": {}})
    gate = schema_gate(bad)
    assert not gate.passed
    assert "updates_name_their_record" in gate.description and "skips_and_rejections_say_why" in gate.description


def as_stored(frame: pd.DataFrame) -> pd.DataFrame:
    """The batch as the gate check reads it from the warehouse: its fields as JSON text."""
    return frame.assign(fields=[to_json(f) for f in frame["fields"]])


@pytest.mark.parametrize("stored", [False, True], ids=["parsed", "json text"])
def test_the_suite_catches_what_is_wrong_with_the_batch_as_a_whole_and_names_the_records(stored: bool) -> None:
    bad = batch({"enginy_id": "e1", "action": "create", "match_key": "k", "fields": {"LastName": "A"}},
                {"enginy_id": "e2", "action": "create", "match_key": "k", "fields": {"LastName": "B"}},
                {"enginy_id": "e3", "action": "update", "crm_id": "c", "outcome": "ambiguous", "fields": {}})
    gates = {g.name: g for g in expectation_suite_gates(as_stored(bad) if stored else bad, previous_rows=1000)}
    assert {name for name, g in gates.items() if not g.passed} == {
        "one_create_per_match_key", "no_ambiguous_written", "row_count_in_bounds"}
    assert "Enginy ids e1, e2" in gates["one_create_per_match_key"].description
    assert "Enginy ids e3" in gates["no_ambiguous_written"].description
    assert gates["no_ambiguous_written"].details["enginy_ids"] == ["e3"]


def test_a_value_a_crm_would_refuse_is_a_rejected_row_not_a_failed_gate() -> None:
    """Bad values were rejected row by row when the batch was built; a few such rows let the rest go."""
    rows = [{"enginy_id": f"e{i}", "action": "create", "fields": {"LastName": f"L{i}"}} for i in range(40)]
    bad = batch(*rows, {"enginy_id": "r1", "action": "reject", "reason": "LastName: required on a new record, "
                                                                          "and the record's last_name is empty"})
    assert failed([schema_gate(bad), rejection_gate(bad, 0.05), *expectation_suite_gates(bad, 41)]) == set()


def test_too_many_rejected_rows_block_and_a_few_do_not() -> None:
    rows = [{"enginy_id": f"e{i}", "action": "create", "fields": {}} for i in range(95)]
    few = batch(*rows, *[{"enginy_id": f"r{i}", "action": "reject", "reason": "bad email"} for i in range(5)])
    many = batch(*rows, *[{"enginy_id": f"r{i}", "action": "reject", "reason": "bad email"} for i in range(6)])
    assert rejection_gate(few, 0.05).passed and not rejection_gate(many, 0.05).passed


def test_a_rejection_gate_that_stops_the_push_names_the_rows_and_why() -> None:
    rows = [{"enginy_id": f"e{i}", "action": "create", "fields": {}} for i in range(8)]
    bad = batch(*rows, {"enginy_id": "r1", "action": "reject", "reason": "Email: 'nope' is not an email address"},
                {"enginy_id": "r2", "action": "reject", "reason": "NumberOfEmployees: 'many' is not a number"})
    gate = rejection_gate(bad, 0.05)
    assert not gate.passed
    assert "r1: Email: 'nope' is not an email address" in gate.description
    assert "r2: NumberOfEmployees: 'many' is not a number" in gate.description
    assert gate.details["rows"] == [{"enginy_id": "r1", "reason": "Email: 'nope' is not an email address"},
                                    {"enginy_id": "r2", "reason": "NumberOfEmployees: 'many' is not a number"}]
    assert gate.details["rejected"] == 2
