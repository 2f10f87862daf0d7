"""Snapshot assets end to end: Dagster materializations pulling from the sandbox CRM over HTTPS
into a real warehouse — first full pull, incremental changes and deletions, backfill windows,
inbound sync rules."""

from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import yaml

from crm_pipelines.assets.crm import build_crm_assets, crm_associations, crm_schema, crm_users
from crm_pipelines.config import EXAMPLES_DIR
from crm_pipelines.enginy.generator import generate_frames
from crm_pipelines.resources.dynamics import DynamicsResource
from crm_pipelines.resources.integration import IntegrationSettings
from crm_pipelines.resources.warehouse import Warehouse, WarehouseIOManager
from crm_pipelines.sandbox import dynamics as sandbox_dynamics

TODAY = datetime.now(timezone.utc).strftime("%Y-%m-%d")
ASSETS = [*build_crm_assets("2024-10-01"), crm_users, crm_associations, crm_schema]
SNAPSHOTS = ["crm_companies", "crm_contacts", "crm_leads"]


@pytest.fixture
def crm(sandbox):
    sandbox_dynamics.seed(sandbox.ctx, generate_frames(200, seed=11).crm)
    return sandbox


@pytest.fixture
def resources(crm, tmp_path: Path):
    warehouse = Warehouse(url=f"duckdb:///{tmp_path / 'wh.duckdb'}")
    return {
        "crm": DynamicsResource(environment_url=crm.base_url, tenant_id=sandbox_dynamics.TENANT_NAME,
                                client_id=sandbox_dynamics.CLIENT_ID, client_secret=sandbox_dynamics.CLIENT_SECRET,
                                authority_host=crm.base_url, page_size=100),
        "warehouse": warehouse,
        "warehouse_io_manager": WarehouseIOManager(warehouse=warehouse),
        "integration": IntegrationSettings(config_path=str(EXAMPLES_DIR / "dynamics.yaml")),
    }


def metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    """The asset's metadata in this run (a range run records it once per partition, alike)."""
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == asset]
    assert events
    return {k: v.value for k, v in events[-1].materialization.metadata.items()}


def web_api(crm, resources, method: str, path: str, **kwargs):
    client = resources["crm"].client()
    return client._send(method, f"{client.api}/{path}", **kwargs)


def test_the_first_pull_snapshots_every_object_and_the_next_one_only_what_changed(crm, resources) -> None:
    with dg.instance_for_test() as instance:
        first = dg.materialize(ASSETS, resources=resources, partition_key=TODAY, instance=instance)
        assert first.success
        warehouse = resources["warehouse"]
        contacts = warehouse.read_table("crm_contacts")
        assert len(contacts) == len(crm.ctx.store.records("dynamics", "contacts"))
        assert contacts["company_name"].notna().mean() > 0.9, "names filled from crm_companies"
        assert metadata(first, "crm_contacts")["mode"] == "full"
        assert len(warehouse.read_table("crm_leads")) == len(crm.ctx.store.records("dynamics", "leads"))
        assert len(warehouse.read_table("crm_users")) > 0
        assert len(warehouse.read_table("crm_associations")) == contacts["account_id"].notna().sum()
        schema = warehouse.read_table("crm_schema")
        assert set(schema["object"]) == {"contacts", "companies", "leads"}

        changed, removed = contacts["crm_id"].iloc[0], contacts["crm_id"].iloc[1]
        web_api(crm, resources, "PATCH", f"contacts({changed})", json={"jobtitle": "VP Growth"})
        web_api(crm, resources, "DELETE", f"contacts({removed})")
        created = web_api(crm, resources, "POST", "contacts", headers={"Prefer": "return=representation"},
                          json={"firstname": "Nadia", "lastname": "Okafor", "emailaddress1": "nadia@okafor.io"}).json()

        second = dg.materialize(ASSETS[:3], resources=resources, partition_key=TODAY, instance=instance)
        meta = metadata(second, "crm_contacts")
        assert meta["mode"] == "incremental"
        assert (meta["records_pulled"], meta["records_new"], meta["records_updated"], meta["records_deleted"]) == (3, 1, 1, 1)
        after = warehouse.read_table("crm_contacts").set_index("crm_id")
        assert len(after) == len(contacts) + 1, "nothing doubled, nothing lost"
        assert after.loc[changed, "job_title"] == "VP Growth"
        assert bool(after.loc[removed, "is_deleted"])
        assert after.loc[created["contactid"], "email"] == "nadia@okafor.io"
        assert meta["api_calls"] <= 3, "an incremental pull costs a page or so, not the whole CRM"


def test_a_backfill_of_several_days_re_pulls_records_modified_in_those_days(crm, resources) -> None:
    with dg.instance_for_test() as instance:
        assert dg.materialize(ASSETS[:3], resources=resources, partition_key=TODAY, instance=instance).success
        rows = [r for r in crm.ctx.store.records("dynamics", "contacts")]
        days = sorted({r.modified_at.strftime("%Y-%m-%d") for r in rows})
        start, end = days[len(days) // 2], days[len(days) // 2 + 2]
        job = dg.Definitions(assets=ASSETS[:3], resources=resources).resolve_implicit_global_asset_job_def()
        result = job.execute_in_process(instance=instance, tags={
            "dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end})
        assert result.success
        meta = metadata(result, "crm_contacts")
        in_range = [r for r in rows if start <= r.modified_at.strftime("%Y-%m-%d") <= end]
        assert meta["mode"] == "window"
        assert meta["records_pulled"] == len(in_range) > 0
        assert meta["records_new"] == 0, "records already in the snapshot are refreshed, not added again"


def test_inbound_sync_rules_keep_only_the_records_they_describe(crm, resources, tmp_path: Path) -> None:
    config = yaml.safe_load((EXAMPLES_DIR / "dynamics.yaml").read_text())
    config["inbound_sync_rules"] = {"contacts": [[{"field": "jobtitle", "operator": "contains", "value": "Sales"}],
                                                 [{"field": "jobtitle", "operator": "equals", "value": "CEO"}]]}
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(config))
    resources = {**resources, "integration": IntegrationSettings(config_path=str(path))}
    with dg.instance_for_test() as instance:
        result = dg.materialize(ASSETS[:3], resources=resources, partition_key=TODAY, instance=instance)
    contacts = resources["warehouse"].read_table("crm_contacts")
    everyone = [r.fields.get("jobtitle") or "" for r in crm.ctx.store.records("dynamics", "contacts")]
    expected = [t for t in everyone if "sales" in t.lower() or t == "CEO"]
    assert 0 < len(contacts) == len(expected) < len(everyone)
    assert metadata(result, "crm_contacts")["records_excluded_by_sync_rules"] == len(everyone) - len(expected)
