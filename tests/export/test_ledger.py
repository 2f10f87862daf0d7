"""The write ledger keys a write by its intent, however the batch reached it."""

from pathlib import Path

import pandas as pd

from crm_pipelines.export.ledger import empty_ledger, mark_sent, record_results, writes_to_send
from crm_pipelines.export.writes import WriteResult
from crm_pipelines.resources.warehouse import Warehouse, parse_json_columns

BATCH = pd.DataFrame({"enginy_id": ["e1", "e2", "e3"], "action": ["create", "update", "skip"],
                      "crm_id": [None, "c2", None], "fields": [{"LastName": "A"}, {"Title": "CTO"}, {}],
                      "owner_id": [None, "005X", None], "company_crm_id": [None, None, None],
                      "reason": [None, None, "nothing to change"]})


def test_a_batch_read_back_from_the_warehouse_has_the_same_writes_and_no_missing_value_markers(tmp_path: Path) -> None:
    warehouse = Warehouse(url=f"duckdb:///{tmp_path / 'wh.duckdb'}")
    warehouse.write_table("batch", BATCH)
    read = parse_json_columns(warehouse.read_table("batch"), ("fields",))
    direct, stored = writes_to_send("contacts", BATCH, empty_ledger()), writes_to_send("contacts", read, empty_ledger())
    assert [w.write_id for w in direct] == [w.write_id for w in stored]
    assert stored[0].owner_id is None and stored[0].crm_id is None and stored[1].owner_id == "005X"


def test_finished_writes_are_not_sent_again_and_unfinished_ones_are() -> None:
    writes = writes_to_send("contacts", BATCH, empty_ledger())
    assert [w.enginy_id for w in writes] == ["e1", "e2"]
    ledger = mark_sent(empty_ledger(), "contacts", writes)
    assert [w.enginy_id for w in writes_to_send("contacts", BATCH, ledger)] == ["e1", "e2"], "sent, no answer yet"
    ledger = record_results(ledger, [WriteResult(writes[0].write_id, "created", "c1"),
                                     WriteResult(writes[1].write_id, "failed", error="503")])
    assert [w.enginy_id for w in writes_to_send("contacts", BATCH, ledger)] == ["e2"]
    assert ledger.set_index("write_id").loc[writes[0].write_id, "attempts"] == 1
