"""The rule matching and the export apply to Enginy records: a record without an id, or whose id
another record holds, is left out (dbt quarantines the same rows: dbt_project/macros/quarantine.sql)."""

import pandas as pd

from crm_pipelines.enginy.quarantine import as_rejections, keyed


def test_a_record_without_id_and_every_record_of_a_shared_id_are_left_out() -> None:
    records = pd.DataFrame({"id": ["c1", None, "c2", "c3", "c2"], "first_name": ["A", "B", "C", "D", "E"]})
    assert keyed(records)["first_name"].tolist() == ["A", "D"]


def test_only_quarantined_contacts_and_companies_become_export_rejections() -> None:
    quarantine = pd.DataFrame({
        "source_table": ["contacts", "campaign_events", "companies"], "record_id": ["c2", "e1", None],
        "field": "id", "value": ["c2", "e1", None], "reason": ["held by 2 rows", "held by 2 rows", "has no id"],
        "source_row": ["{}", "{}", '{"id":null,"name":"Acme"}']})
    rejected = as_rejections(quarantine)
    assert rejected[["object", "status", "reason"]].values.tolist() == [
        ["contacts", "rejected", "held by 2 rows"], ["companies", "rejected", "has no id"]]
    assert rejected["enginy_id"].iloc[0] == "c2" and pd.isna(rejected["enginy_id"].iloc[1])
    assert "Acme" in rejected["source_row"].iloc[1]
