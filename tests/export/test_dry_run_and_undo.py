"""`crm-pipelines dry-run` prints what a push would do; the undo_associations job puts back the
company links an export removed."""

import re
from collections import Counter
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from typer.testing import CliRunner

from crm_pipelines.assets.export import undo_associations
from crm_pipelines.cli import app
from crm_pipelines.export.writes import Write
from crm_pipelines.crms.salesforce.client import SalesforceResource
from crm_pipelines.export.dry_run import DRY_RUN_COLUMNS
from crm_pipelines.export.ledger import EXPORT_LEDGER
from crm_pipelines.resources.warehouse import (WAREHOUSE_SCHEMA_ENV, WAREHOUSE_URL_ENV, LedgerTable, Warehouse,
                                               WarehouseIOManager)
from tests.postgres import warehouse_on

BUILT = pd.Timestamp("2026-11-30 09:15:00", tz="UTC")
BATCH = pd.DataFrame({
    "enginy_id": ["e1", "e2", "e3", "e4"], "action": ["create", "update", "skip", "reject"],
    "crm_id": [None, "003A", "003B", None],
    "fields": [{"LastName": "Lovelace"}, {"Title": "CTO"}, {}, {}],
    "diff": [[{"field": "LastName", "crm_value": None, "new_value": "Lovelace", "rule": "enginy_overwrites_crm"}],
             [{"field": "Title", "crm_value": "Engineer", "new_value": "CTO", "rule": "sync_if_empty"}], [], []],
    "reason": [None, None, "nothing to change", "Email: 'x' is not an email address"],
    "built_at": BUILT})


def dry_run(warehouse: Warehouse, *options: str) -> list[str]:
    """`crm-pipelines dry-run` on ``warehouse``: the lines it prints."""
    env = {WAREHOUSE_URL_ENV: warehouse.url, WAREHOUSE_SCHEMA_ENV: warehouse.schema_name}
    result = CliRunner().invoke(app, ["dry-run", *options], env=env)
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def ledger_entries(*at: str) -> pd.DataFrame:
    """Export ledger entries, as a push records them, one per time."""
    return pd.DataFrame({"write_id": [f"w{i}" for i in range(len(at))], "object": "contacts",
                         "enginy_id": [f"e{i}" for i in range(len(at))], "action": "create", "crm_id": "003X",
                         "status": "created", "error": None, "error_code": None, "attempts": 1,
                         "updated_at": pd.to_datetime(list(at), utc=True), "job_id": None})


def test_dry_run_prints_a_summary_then_each_write_field_by_field_and_why_rows_are_left_out(tmp_path: Path) -> None:
    warehouse = Warehouse(url=f"duckdb:///{tmp_path / 'wh.duckdb'}")
    warehouse.write_table("contact_export_batch", BATCH)
    out = dry_run(warehouse)
    assert out[0].startswith("Dry run:") and "Nothing is pushed" in out[0]
    assert out[1] == ("contact_export_batch: 1 create, 1 update, 1 skip, 1 reject — built 2026-11-30 09:15:00 UTC; "
                      "pushed first"), "the summary comes first, stamped with the batch's time"
    assert not any(line.startswith("WARNING") for line in out), "nothing changed since the batch was built"
    detail = out[out.index("contact_export_batch, as a push sends it:") + 1:]
    assert detail == ["  REJECT  Enginy e4: Email: 'x' is not an email address",
                      "  UPDATE  Enginy e2 → CRM 003A",
                      "      Title: 'Engineer' → 'CTO'  (sync_if_empty)",
                      "  CREATE  Enginy e1 → new record",
                      "      LastName: 'Lovelace'  (enginy_overwrites_crm)",
                      "  SKIP    Enginy e3: nothing to change"], "rejections first, as the batch's diff preview"


def test_rejections_are_listed_when_skips_are_not(tmp_path: Path) -> None:
    warehouse = Warehouse(url=f"duckdb:///{tmp_path / 'wh.duckdb'}")
    warehouse.write_table("contact_export_batch", BATCH)
    out = dry_run(warehouse, "--no-show-skips")
    assert "  REJECT  Enginy e4: Email: 'x' is not an email address" in out
    assert not any("SKIP" in line for line in out)
    assert "1 skip" in out[1], "the summary still counts the skips"


@pytest.mark.parametrize("kind", ["duckdb", "postgresql"])
def test_the_dry_run_warns_when_a_push_or_a_crm_change_came_after_the_batch(kind: str, tmp_path: Path) -> None:
    with warehouse_on(kind, tmp_path) as warehouse:
        warehouse.write_table("contact_export_batch", BATCH)
        LedgerTable(warehouse, EXPORT_LEDGER).save(ledger_entries("2026-11-29 18:00:00"))
        warehouse.write_table("crm_contacts", pd.DataFrame({
            "crm_id": ["003A"], "last_modified": pd.to_datetime(["2026-11-30 08:00"], utc=True)}))
        assert not any(line.startswith("WARNING") for line in dry_run(warehouse)), "all of it is older than the batch"

        LedgerTable(warehouse, EXPORT_LEDGER).save(ledger_entries("2026-11-29 18:00:00", "2026-11-30 10:00:00",
                                                                  "2026-11-30 10:05:30"))
        out = dry_run(warehouse)
        assert out[1] == ("WARNING: the CRM changed after these batches were built: a push recorded 2 writes since, "
                          "the last at 2026-11-30 10:05:30 UTC (export_ledger). For fresh batches run "
                          "incremental_sync, then enginy_sync (Dagster UI → Jobs), and this dry run again.")

        warehouse.write_table("crm_contacts", pd.DataFrame({
            "crm_id": ["003A", "003B"], "last_modified": pd.to_datetime(["2026-11-30 08:00", "2026-12-01 07:00"],
                                                                        utc=True)}))
        warehouse.write_table(EXPORT_LEDGER, ledger_entries("2026-11-29 18:00:00"))  # only the push before the batch
        [warning] = [line for line in dry_run(warehouse) if line.startswith("WARNING")]
        assert "crm_contacts holds 1 record changed since, the last at 2026-12-01 07:00:00 UTC" in warning
        assert "push" not in warning


def test_a_batch_from_before_the_stamp_says_its_age_is_unknown(tmp_path: Path) -> None:
    warehouse = Warehouse(url=f"duckdb:///{tmp_path / 'wh.duckdb'}")
    warehouse.write_table("contact_export_batch", BATCH.drop(columns="built_at"))
    out = dry_run(warehouse)
    assert out[1].startswith("WARNING: these batches do not say when they were built")
    assert "built at an unknown time" in out[2]


def test_the_dry_run_says_which_people_batch_a_push_sends(tmp_path: Path) -> None:
    warehouse = Warehouse(url=f"duckdb:///{tmp_path / 'wh.duckdb'}")
    warehouse.write_table("company_export_batch", BATCH.head(0))
    warehouse.write_table("contact_export_batch", BATCH)
    warehouse.write_table("lead_export_batch", BATCH.assign(enginy_id=["l1", "l2", "l3", "l4"]))
    out = dry_run(warehouse)
    assert "company_export_batch: 0 create, 0 update, 0 skip, 0 reject — empty; pushed first" in out
    assert any(line.startswith("contact_export_batch: 1 create")
               and line.endswith("pushed after company_export_batch") for line in out)
    [lead] = [line for line in out if line.startswith("lead_export_batch:")]
    assert "NOT PUSHED: a push sends the contact batch" in lead and "as_leads: true" in lead
    assert "lead_export_batch, as a push sends it:" not in out and not any("Enginy l" in line for line in out)

    as_leads = dry_run(warehouse, "--as-leads")
    [contact] = [line for line in as_leads if line.startswith("contact_export_batch:")]
    assert "NOT PUSHED: launched with as_leads: true, a push sends the lead batch instead" in contact
    assert "lead_export_batch, as a push sends it:" in as_leads and "  CREATE  Enginy l1 → new record" in as_leads
    assert not any("Enginy e" in line for line in as_leads)


def cycled_batch(ids: list[str], reason) -> pd.DataFrame:
    """A batch of ``ids`` cycling create, update, skip, update, reject; each write a Title diff,
    each skip and rejection ``reason(i)``."""
    actions = [("create", "update", "skip", "update", "reject")[i % 5] for i in range(len(ids))]
    return pd.DataFrame({"enginy_id": ids, "action": actions,
                         "crm_id": [f"003{i}" if a == "update" else None for i, a in enumerate(actions)],
                         "diff": [[{"field": "Title", "crm_value": None, "new_value": f"T{i}", "rule": "r"}]
                                  if a in ("create", "update") else [] for i, a in enumerate(actions)],
                         "reason": [None if a in ("create", "update") else reason(i)
                                    for i, a in enumerate(actions)]})


def test_the_summary_counts_agree_with_the_rows_listed(tmp_path: Path) -> None:
    n = 500
    batch = cycled_batch([f"e{i}" for i in range(n)], lambda i: "why").assign(built_at=BUILT)
    warehouse = Warehouse(url=f"duckdb:///{tmp_path / 'wh.duckdb'}")
    warehouse.write_table("contact_export_batch", batch)
    everything = dry_run(warehouse, "--limit", str(n))
    listed = Counter(line.split()[0].lower() for line in everything if line.startswith("  ") and "Enginy" in line)
    summary = re.findall(r"([\d,]+) (create|update|skip|reject)", everything[1])
    assert {action: int(count.replace(",", "")) for count, action in summary} == listed
    short = dry_run(warehouse, "--limit", "2")
    assert "  … and 198 more of the 200 updates (--limit)" in short
    assert "  … and 98 more of the 100 creates (--limit)" in short
    assert sum(line.startswith("  UPDATE") for line in short) == 2


def test_the_full_dry_run_shows_values_as_the_batch_preview_does_each_on_its_line(tmp_path: Path) -> None:
    from crm_pipelines.assets.export import _shown
    from crm_pipelines.export.dry_run import DryRun, write_dry_run

    values = ["O'Brien", 'say "hi"', "it's \"both\"", "two\nlines", "back\\slash", True, 3.5, 12.0, 7, None, "",
              "  ", "Zoë"]
    diff = [{"field": f"F{i}", "crm_value": None, "new_value": v, "rule": "r"} for i, v in enumerate(values)]
    batch = pd.DataFrame({"enginy_id": [f"e{i}" for i in range(3)], "action": ["create", "skip", "update"],
                          "crm_id": [None, "003B", "003C"], "fields": [{}, {}, {}],
                          "diff": [diff, [], [{"field": "Title", "crm_value": None, "new_value": 40.0}]],
                          "reason": [None, "nothing to change", None]})
    warehouse = Warehouse(url=f"duckdb:///{tmp_path / 'wh.duckdb'}")
    warehouse.write_table("contact_export_batch", batch)
    path = tmp_path / "reports" / "dry_run.txt"
    write_dry_run(DryRun({"contact_export_batch": warehouse.read_table("contact_export_batch")}), path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[lines.index("contact_export_batch, as a push sends it:") + 1:] == [
        "  UPDATE  Enginy e2 → CRM 003C",
        "      Title: (empty) → 40",
        "  CREATE  Enginy e0 → new record",
        *[f"      F{i}: {_shown(v)}  (r)" for i, v in enumerate(values)],
        "  SKIP    Enginy e1: nothing to change"]
    assert [_shown(v) for v in values[5:12]] == ["True", "3.5", "12", "7", "(empty)", "(empty)", "(empty)"]


@pytest.mark.parametrize("kind", ["duckdb", "postgresql"])
def test_the_dry_run_lists_rows_in_batch_order_and_the_limit_takes_the_first(kind: str, tmp_path: Path) -> None:
    """The text streams out unsorted: the batch's own order must survive DuckDB's vectors
    (2,048 rows) and a PostgreSQL warehouse read as Arrow."""
    from crm_pipelines.export.dry_run import DryRun, action_counts, render_dry_run, write_dry_run

    n = 5_000
    batch = cycled_batch([f"e{n - i:05d}" for i in range(n)], lambda i: f"why {i}")
    actions = batch["action"].tolist()
    with warehouse_on(kind, tmp_path) as warehouse:
        warehouse.write_table("contact_export_batch", batch)
        stored = DryRun({"contact_export_batch": warehouse.read_arrow("contact_export_batch", DRY_RUN_COLUMNS)})
        path = tmp_path / "dry_run.txt"
        write_dry_run(stored, path)
        shown = render_dry_run(stored, limit=3)
        counts = action_counts(stored)
    lines = path.read_text(encoding="utf-8").splitlines()
    for action in ("update", "create"):
        rows = [i for i, a in enumerate(actions) if a == action]
        at = [n - int(line.split()[2][1:]) for line in lines if line.startswith(f"  {action.upper()}")]
        assert at == rows, f"every {action}, in batch order"
        assert [line for line in lines if "Title:" in line and f"'T{rows[0]}'" in line] == [
            f"      Title: {'(empty) → ' if action == 'update' else ''}'T{rows[0]}'  (r)"]
    for action in ("skip", "reject"):
        rows = [i for i, a in enumerate(actions) if a == action]
        assert [line.split(": ", 1)[1] for line in lines if line.startswith(f"  {action.upper()}")] == [
            f"why {i}" for i in rows]
        assert [line.split()[2].rstrip(":") for line in shown if line.startswith(f"  {action.upper()}")] == [
            f"e{n - i:05d}" for i in rows[:3]]
    assert shown[1] == "contact_export_batch: 1,000 create, 2,000 update, 1,000 skip, 1,000 reject — built at an " \
                       "unknown time; pushed first"
    assert "  … and 1,997 more of the 2,000 updates (--limit)" in shown
    assert dict(zip(counts["action"], counts["rows"])) == {"create": 1000, "update": 2000, "skip": 1000, "reject": 1000}


def test_the_dry_run_asset_carries_the_stamp_and_the_summary(tmp_path: Path) -> None:
    from crm_pipelines.assets.export import _dry_run_asset

    warehouse = Warehouse(url=f"duckdb:///{tmp_path / 'wh.duckdb'}")
    warehouse.write_table("contact_export_batch", BATCH)
    LedgerTable(warehouse, EXPORT_LEDGER).save(ledger_entries("2026-11-30 10:00:00"))
    result = dg.materialize([_dry_run_asset(["contact_export_batch"])], resources={
        "warehouse": warehouse, "warehouse_io_manager": WarehouseIOManager(warehouse=warehouse)},
        run_config={"ops": {"export_dry_run": {"config": {"report_dir": str(tmp_path / "reports")}}}})
    [event] = result.get_asset_materialization_events()
    meta = {k: v.value for k, v in event.materialization.metadata.items()}
    assert meta["contact_export_batch_built_at"] == BUILT.timestamp()
    assert meta["crm_changed_since_built"].startswith("WARNING: the CRM changed after these batches were built")
    assert "contact_export_batch: 1 create, 1 update, 1 skip, 1 reject" in meta["summary"]
    assert meta["contact_export_batch_create"] == 1


def test_dry_run_without_batches_says_how_to_make_them(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["dry-run"], env={"CRM_PIPELINES_WAREHOUSE_URL": f"duckdb:///{tmp_path}/e.db"})
    assert result.exit_code == 2 and "materialize the *_export_batch assets" in result.output


def test_the_undo_job_makes_each_removed_company_primary_again(sandbox, tmp_path: Path) -> None:
    resource = SalesforceResource(login_url=sandbox.base_url, client_id="sandbox-client",
                                  client_secret="sandbox-secret")
    client = resource.client()
    acme, globex = (client.push("companies", [Write(n, "create", n, {"Name": n})])[0].crm_id for n in ("Acme", "Globex"))
    [contact] = client.push("contacts", [Write("c", "create", "en-c", {"LastName": "Turing"}, company_id=globex)])
    warehouse = Warehouse(url=f"duckdb:///{tmp_path / 'wh.duckdb'}")
    warehouse.write_table("removed_associations", pd.DataFrame({
        "enginy_id": ["en-c"], "contact_crm_id": [contact.crm_id], "company_crm_id": [acme],
        "replaced_by": [globex], "recorded_at": [pd.Timestamp.now(tz="UTC")], "restored": [False]}))
    result = undo_associations.execute_in_process(resources={"crm": resource, "warehouse": warehouse})
    assert result.success
    assert sandbox.ctx.store.get("salesforce", "Contact", contact.crm_id).fields["AccountId"] == acme
    assert warehouse.read_table("removed_associations")["restored"].tolist() == [True]
    [marked] = result.get_asset_materialization_events()
    assert marked.asset_key.path[-1] == "removed_associations", "Dagster shows the table the undo changed"
    assert marked.materialization.metadata["restored_this_run"].value == 1
    again = undo_associations.execute_in_process(resources={"crm": resource, "warehouse": warehouse})
    assert again.output_for_node("restore_removed_associations") == 0, "a restored link is not restored twice"


def test_a_push_run_again_records_its_removed_links_once() -> None:
    from crm_pipelines.export.associations import REMOVED_COLUMNS, record_removed, removed_links

    batch = pd.DataFrame({"enginy_id": ["e1", "e2"], "action": ["update", "update"], "crm_id": ["c1", "c2"],
                          "unlink_company_id": ["old1", None], "company_crm_id": ["new1", "new2"]})
    first = record_removed(pd.DataFrame(columns=REMOVED_COLUMNS), removed_links(batch))
    again = record_removed(first, removed_links(batch))
    assert again[["contact_crm_id", "company_crm_id"]].values.tolist() == [["c1", "old1"]]
    # Once put back, the same link removed by a later push is recorded again.
    restored = again.assign(restored=True)
    later = record_removed(restored, removed_links(batch))
    assert len(later) == 2 and later["restored"].tolist() == [True, False]
