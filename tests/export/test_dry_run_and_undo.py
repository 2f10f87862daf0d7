"""`crm-pipelines dry-run` prints what a push would do; the undo_associations job puts back the
company links an export removed."""

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from crm_pipelines.assets.export import undo_associations
from crm_pipelines.cli import app
from crm_pipelines.export.writes import Write
from crm_pipelines.crms.salesforce.client import SalesforceResource
from crm_pipelines.export.dry_run import DRY_RUN_COLUMNS
from crm_pipelines.resources.warehouse import Warehouse
from tests.postgres import warehouse_on

BATCH = pd.DataFrame({
    "enginy_id": ["e1", "e2", "e3", "e4"], "action": ["create", "update", "skip", "reject"],
    "crm_id": [None, "003A", "003B", None],
    "fields": [{"LastName": "Lovelace"}, {"Title": "CTO"}, {}, {}],
    "diff": [[{"field": "LastName", "crm_value": None, "new_value": "Lovelace", "rule": "enginy_overwrites_crm"}],
             [{"field": "Title", "crm_value": "Engineer", "new_value": "CTO", "rule": "sync_if_empty"}], [], []],
    "reason": [None, None, "nothing to change", "Email: 'x' is not an email address"]})


def test_dry_run_prints_each_write_field_by_field_and_why_rows_are_left_out(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    Warehouse(url=url).write_table("contact_export_batch", BATCH)
    result = CliRunner().invoke(app, ["dry-run"], env={"CRM_PIPELINES_WAREHOUSE_URL": url})
    assert result.exit_code == 0, result.output
    out = result.output
    assert "contact_export_batch: 1 create, 1 update, 1 skip, 1 reject" in out
    assert "UPDATE  Enginy e2 → CRM 003A" in out and "Title: 'Engineer' → 'CTO'  (sync_if_empty)" in out
    assert "CREATE  Enginy e1 → new record" in out
    assert "SKIP    Enginy e3: nothing to change" in out and "not an email address" in out


def test_the_full_dry_run_shows_every_value_as_python_prints_it_each_on_its_line(tmp_path: Path) -> None:
    from crm_pipelines.export.dry_run import write_dry_run

    values = ["O'Brien", 'say "hi"', "it's \"both\"", "two\nlines", "back\\slash", True, 3.5, None, "Zoë"]
    diff = [{"field": f"F{i}", "crm_value": None, "new_value": v, "rule": "r"} for i, v in enumerate(values)]
    batch = pd.DataFrame({"enginy_id": [f"e{i}" for i in range(3)], "action": ["create", "skip", "update"],
                          "crm_id": [None, "003B", "003C"], "fields": [{}, {}, {}],
                          "diff": [diff, [], [{"field": "Title", "crm_value": "A", "new_value": "B"}]],
                          "reason": [None, "nothing to change", None]})
    warehouse = Warehouse(url=f"duckdb:///{tmp_path / 'wh.duckdb'}")
    warehouse.write_table("contact_export_batch", batch)
    path = tmp_path / "reports" / "dry_run.txt"
    write_dry_run({"contact_export_batch": warehouse.read_table("contact_export_batch")}, path)
    assert path.read_text(encoding="utf-8").splitlines() == [
        "contact_export_batch: 1 create, 1 update, 1 skip, 0 reject",
        "  CREATE  Enginy e0 → new record",
        *[f"      F{i}: None → {v!r}  (r)" for i, v in enumerate(values)],
        "  UPDATE  Enginy e2 → CRM 003C",
        "      Title: 'A' → 'B'  ()",
        "  SKIP    Enginy e1: nothing to change"]


@pytest.mark.parametrize("kind", ["duckdb", "postgresql"])
def test_the_dry_run_lists_rows_in_batch_order_and_the_limit_takes_the_first(kind: str, tmp_path: Path) -> None:
    """The text streams out unsorted: the batch's own order must survive DuckDB's vectors
    (2,048 rows) and a PostgreSQL warehouse read as Arrow."""
    from crm_pipelines.export.dry_run import action_counts, render_dry_run, write_dry_run

    n = 5_000
    actions = [("create", "update", "skip", "update", "reject")[i % 5] for i in range(n)]
    batch = pd.DataFrame({"enginy_id": [f"e{n - i:05d}" for i in range(n)], "action": actions,
                          "crm_id": [f"003{i}" if a == "update" else None for i, a in enumerate(actions)],
                          "diff": [[{"field": "Title", "crm_value": None, "new_value": f"T{i}", "rule": "r"}]
                                   if a in ("create", "update") else [] for i, a in enumerate(actions)],
                          "reason": [None if a in ("create", "update") else f"why {i}" for i, a in enumerate(actions)]})
    with warehouse_on(kind, tmp_path) as warehouse:
        warehouse.write_table("contact_export_batch", batch)
        stored = {"contact_export_batch": warehouse.read_arrow("contact_export_batch", DRY_RUN_COLUMNS)}
        path = tmp_path / "dry_run.txt"
        write_dry_run(stored, path)
        shown = render_dry_run(stored, limit=3)
        counts = action_counts(stored)
    writes = [i for i, a in enumerate(actions) if a in ("create", "update")]
    left_out = [i for i, a in enumerate(actions) if a in ("skip", "reject")]
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [line for line in lines if "Title:" in line] == [f"      Title: None → 'T{i}'  (r)" for i in writes]
    assert [line.split(": ", 1)[1] for line in lines if ": why" in line] == [f"why {i}" for i in left_out]
    assert shown[0] == "contact_export_batch: 1000 create, 2000 update, 1000 skip, 1000 reject"
    assert [line.split()[2] for line in shown if line.startswith("  CREATE") or line.startswith("  UPDATE")] == [
        f"e{n - i:05d}" for i in writes[:3]]
    assert f"  … {len(writes) - 3} more writes (--limit)" in shown
    assert [line.split()[2].rstrip(":") for line in shown if line.startswith(("  SKIP", "  REJECT"))] == [
        f"e{n - i:05d}" for i in left_out[:3]]
    assert dict(zip(counts["action"], counts["rows"])) == {"create": 1000, "update": 2000, "skip": 1000, "reject": 1000}


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
