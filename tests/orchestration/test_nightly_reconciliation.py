"""The nightly reconciliation schedule: its run pulls every CRM object in full, matches, reports
match quality and attaches an export dry run — and writes nothing to the CRM."""

from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pytest

from crm_pipelines.crms.registry import example_config
from crm_pipelines.enginy.database import write_tables
from crm_pipelines.enginy.generator import generate_frames
from crm_pipelines.resources.warehouse import Warehouse, parse_json_columns
from crm_pipelines.crms.salesforce import emulator as sandbox_salesforce
from crm_pipelines.crms.registry import client_environment
from tests.pipeline import instance_in_memory

WRITES = ("POST", "PATCH", "PUT", "DELETE")


@pytest.mark.slow
def test_the_nightly_run_refreshes_everything_and_attaches_a_dry_run_without_pushing(
        sandbox, tmp_path: Path, monkeypatch) -> None:
    data = generate_frames(120, seed=21)
    enginy_url = f"sqlite:///{tmp_path / 'enginy.sqlite'}"
    write_tables(enginy_url, data.enginy)
    sandbox_salesforce.seed(sandbox.ctx, data.crm)
    env = {"CRM_PIPELINES_CONFIG": str(example_config("salesforce")), "ENGINY_DATABASE_URL": enginy_url,
           "CRM_PIPELINES_WAREHOUSE_URL": f"duckdb:///{tmp_path / 'wh.duckdb'}",
           **client_environment("salesforce", sandbox)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)  # the dry run's file goes to data/reports under the working directory
    from crm_pipelines.definitions import defs as load

    defs = load()
    repository = defs.get_repository_def()
    schedule = repository.get_schedule_def("nightly_reconciliation_schedule")
    assert schedule.cron_schedule == "0 2 * * *"
    tonight = datetime.now(timezone.utc).replace(hour=2, minute=0, second=0, microsecond=0)
    with dg.build_schedule_context(scheduled_execution_time=tonight, repository_def=repository) as context:
        [request] = schedule.evaluate_tick(context).run_requests
    assert request.run_key == f"nightly:{tonight:%Y-%m-%d}"

    with instance_in_memory() as instance:
        sandbox.ctx.stats.reset()
        result = defs.resolve_job_def("nightly_reconciliation").execute_in_process(
            instance=instance, run_config=request.run_config)
        assert result.success
    meta = {e.asset_key.path[-1]: {k: v.value for k, v in e.materialization.metadata.items()}
            for e in result.get_asset_materialization_events()}
    assert {meta[name]["mode"] for name in ("crm_companies", "crm_contacts", "crm_leads")} == {"full"}
    assert {"match_quality_report", "export_dry_run"} <= set(meta) and "crm_push_results" not in meta

    warehouse = Warehouse(url=env["CRM_PIPELINES_WAREHOUSE_URL"])
    batch = parse_json_columns(warehouse.read_table("contact_export_batch"), ("diff",))
    creates = int((batch["action"] == "create").sum())
    assert meta["export_dry_run"]["contact_export_batch_create"] == creates > 0
    text = Path(meta["export_dry_run"]["full_dry_run"]).read_text()
    assert text.count("CREATE  Enginy") >= creates and "contact_export_batch:" in text
    an_update = batch[batch["action"] == "update"].iloc[0]
    assert f"UPDATE  Enginy {an_update['enginy_id']} → CRM {an_update['crm_id']}" in text
    assert "```" in meta["export_dry_run"]["diff"]
    writes = {(m, e): n for (c, m, e), n in sandbox.ctx.stats.calls.items() if c == "salesforce" and m in WRITES
              and "oauth2" not in e}
    assert writes == {}, "the nightly run pushes nothing"
