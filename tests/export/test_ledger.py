"""The write ledger keys a write by its intent, however the batch reached it."""

from pathlib import Path

import pandas as pd
import pytest

from crm_pipelines.export.ledger import EXPORT_LEDGER, LEDGER_SQL_TYPES, Ledger, empty_ledger, writes_to_send
from crm_pipelines.export.writes import WriteResult
from crm_pipelines.resources.warehouse import LedgerTable, Warehouse, parse_json_columns
from tests.postgres import warehouse_on

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
    ledger = Ledger()
    ledger.mark_sent("contacts", writes)
    assert [w.enginy_id for w in writes_to_send("contacts", BATCH, ledger.frame())] == ["e1", "e2"], \
        "sent, no answer yet"
    ledger.record([WriteResult(writes[0].write_id, "created", "c1"),
                   WriteResult(writes[1].write_id, "failed", error="503")])
    assert [w.enginy_id for w in writes_to_send("contacts", BATCH, ledger.frame())] == ["e2"]
    assert ledger.get(writes[0].write_id)["attempts"] == 1
    ledger.mark_sent("contacts", writes[1:])
    assert ledger.get(writes[1].write_id)["attempts"] == 2, "a write sent again counts its attempts"


def test_each_change_hands_back_only_the_rows_it_changed() -> None:
    ledger = Ledger()
    writes = writes_to_send("contacts", BATCH, empty_ledger())
    sent = ledger.mark_sent("contacts", writes[:1])
    assert sent["write_id"].tolist() == [writes[0].write_id] and sent["status"].tolist() == ["sent"]
    answered = ledger.record([WriteResult(writes[0].write_id, "created", "c1")])
    assert answered[["write_id", "status", "crm_id"]].values.tolist() == [[writes[0].write_id, "created", "c1"]]
    assert "enginy_id" not in answered, "an answer changes its columns only: the upsert keeps the rest"
    assert ledger.get(writes[0].write_id)["enginy_id"] == "e1" and len(ledger) == 1


@pytest.mark.parametrize("kind", ["duckdb", "postgresql"])
def test_the_ledger_table_upserts_by_write_id_and_takes_over_a_table_written_whole(kind: str, tmp_path: Path) -> None:
    with warehouse_on(kind, tmp_path) as warehouse:
        _upserts_by_write_id(warehouse)


@pytest.mark.parametrize("kind", ["duckdb", "postgresql"])
def test_a_push_reads_the_entries_of_its_own_writes_and_the_counts_cover_the_whole_ledger(
        kind: str, tmp_path: Path) -> None:
    with warehouse_on(kind, tmp_path) as warehouse:
        table = LedgerTable(warehouse, EXPORT_LEDGER)
        book = Ledger()
        writes = writes_to_send("contacts", BATCH, empty_ledger())
        table.save(book.mark_sent("contacts", writes))
        table.save(book.record([WriteResult(writes[0].write_id, "created", "c1")]))
        held = table.read([writes[0].write_id, "not-a-write-of-this-ledger"])
        assert held["write_id"].tolist() == [writes[0].write_id] and held["status"].tolist() == ["created"]
        assert table.read([]).empty and list(table.read([]).columns) == list(table.read().columns)
        assert table.status_counts() == {"created": 1, "sent": 1}


@pytest.mark.parametrize("kind", ["duckdb", "postgresql"])
def test_the_creates_a_crm_refused_as_duplicates_are_read_back_with_when_and_why(kind: str, tmp_path: Path) -> None:
    batch = pd.DataFrame({"enginy_id": ["e1", "e2", "e3"], "action": ["create"] * 3, "crm_id": [None] * 3,
                          "fields": [{"LastName": n} for n in "ABC"]})
    with warehouse_on(kind, tmp_path) as warehouse:
        table = LedgerTable(warehouse, EXPORT_LEDGER)
        book = Ledger()
        writes = writes_to_send("contacts", batch, empty_ledger())
        table.save(book.mark_sent("contacts", writes))
        table.save(book.record([
            WriteResult(writes[0].write_id, "rejected", error="Use one of these records?",
                        error_code="DUPLICATES_DETECTED"),
            WriteResult(writes[1].write_id, "rejected", error="Email: invalid", error_code="INVALID_EMAIL_ADDRESS"),
            WriteResult(writes[2].write_id, "created", "003C")]))
        refused = table.refused_as_duplicates("contacts")
        assert refused[["enginy_id", "error_code", "error"]].values.tolist() == [
            ["e1", "DUPLICATES_DETECTED", "Use one of these records?"]]
        assert pd.notna(refused["updated_at"].iloc[0])
        assert table.refused_as_duplicates("leads").empty


def _upserts_by_write_id(warehouse: Warehouse) -> None:
    writes = writes_to_send("contacts", BATCH, empty_ledger())
    earlier = Ledger()
    earlier.mark_sent("contacts", writes)
    # As versions that rewrote the ledger left it (before bulk job ids were kept).
    warehouse.write_table(EXPORT_LEDGER, earlier.frame().drop(columns="job_id"))
    table = LedgerTable(warehouse, EXPORT_LEDGER)
    ledger = Ledger(table.read())
    table.save(ledger.record([WriteResult(writes[0].write_id, "created", "c1")]))
    held = table.read().set_index("write_id")
    assert len(held) == 2, "the earlier rows are kept, the answered one replaced, not added"
    assert (held.loc[writes[0].write_id, "status"], held.loc[writes[0].write_id, "crm_id"]) == ("created", "c1")
    assert held.loc[writes[1].write_id, "status"] == "sent"
    assert held.loc[writes[0].write_id, "attempts"] == 1


@pytest.mark.parametrize("kind", ["duckdb", "postgresql"])
def test_a_keyed_ledger_from_before_bulk_job_ids_gains_the_column_and_keeps_its_rows(kind: str, tmp_path: Path) -> None:
    with warehouse_on(kind, tmp_path) as warehouse:
        writes = writes_to_send("contacts", BATCH, empty_ledger())
        earlier = Ledger()
        warehouse.keep_keyed_table(EXPORT_LEDGER, {c: t for c, t in LEDGER_SQL_TYPES.items() if c != "job_id"},
                                   key="write_id")
        warehouse.upsert(EXPORT_LEDGER, earlier.mark_sent("contacts", writes).drop(columns="job_id"), key="write_id")
        table = LedgerTable(warehouse, EXPORT_LEDGER)
        book = Ledger(table.read())
        table.save(book.mark_job("750JOB", writes[:1]))
        held = table.read().set_index("write_id")
        assert len(held) == 2 and set(held["status"]) == {"sent"}
        assert held.loc[writes[0].write_id, "job_id"] == "750JOB" and pd.isna(held.loc[writes[1].write_id, "job_id"])
        assert list(Ledger(table.read()).in_jobs(writes)) == ["750JOB"]


@pytest.mark.parametrize("kind", ["duckdb", "postgresql"])
def test_a_ledger_rebuild_that_fails_halfway_leaves_the_old_table_and_its_rows(kind: str, tmp_path: Path) -> None:
    with warehouse_on(kind, tmp_path) as warehouse:
        earlier = Ledger()
        earlier.mark_sent("contacts", writes_to_send("contacts", BATCH, empty_ledger()))
        # A value the keyed table's BIGINT column cannot take: the copy into the rebuilt table fails.
        warehouse.write_table(EXPORT_LEDGER, earlier.frame().astype({"attempts": str}).assign(attempts="many"))
        with pytest.raises(Exception):
            LedgerTable(warehouse, EXPORT_LEDGER)
        assert EXPORT_LEDGER in warehouse.table_names()
        assert warehouse.read_table(EXPORT_LEDGER)["write_id"].tolist() == earlier.frame()["write_id"].tolist()
