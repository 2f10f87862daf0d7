"""The matching assets in a Dagster run: snapshots pulled from the sandbox Salesforce over HTTPS
into a DuckDB warehouse, the Enginy tables from SQLite, then matches, CRM duplicates and the
report — read back from the warehouse and scored against the generator's ground truth."""

import html
from pathlib import Path

import dagster as dg
import pandas as pd
import yaml

from crm_pipelines.crms.registry import example_config
from crm_pipelines.assets.crm import crm_snapshots
from crm_pipelines.assets.enginy import enginy_assets
from crm_pipelines.assets.matching import matching_assets
from crm_pipelines.enginy.database import write_tables
from crm_pipelines.enginy.generator import generate_frames
from crm_pipelines.resources.enginy import EnginyDatabase
from crm_pipelines.resources.integration import IntegrationSettings
from crm_pipelines.crms.salesforce.client import SalesforceResource
from crm_pipelines.resources.warehouse import Warehouse, WarehouseIOManager
from crm_pipelines.crms.salesforce import emulator as sandbox_salesforce
from tests.matching.test_report import sections
from tests.pipeline import instance_in_memory



def test_matching_assets_read_whole_daily_snapshots_and_write_matches_duplicates_and_the_report(sandbox, tmp_path: Path):
    data = generate_frames(300, seed=5)
    sandbox_salesforce.seed(sandbox.ctx, data.crm)
    enginy_url = f"sqlite:///{tmp_path / 'enginy.sqlite'}"
    write_tables(enginy_url, data.enginy)
    config = yaml.safe_load((example_config("salesforce")).read_text())
    config.pop("inbound_sync_rules")  # every lead in the snapshot, so the truth is simple
    (tmp_path / "integration.yaml").write_text(yaml.safe_dump(config))
    warehouse = Warehouse(url=f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    resources = {
        "crm": SalesforceResource(login_url=sandbox.base_url, client_id="sandbox-client", client_secret="sandbox-secret"),
        "warehouse": warehouse, "warehouse_io_manager": WarehouseIOManager(warehouse=warehouse),
        "enginy": EnginyDatabase(url=enginy_url),
        "integration": IntegrationSettings(config_path=str(tmp_path / "integration.yaml")),
    }
    assets = [*enginy_assets, crm_snapshots, *matching_assets]
    report_dir = tmp_path / "reports"
    with instance_in_memory() as instance:
        pulled = dg.materialize(assets, selection=[crm_snapshots], resources=resources, instance=instance)
        assert pulled.success
        run = dg.materialize(
            assets, selection=["enginy_companies", "enginy_contacts", *(a.key.path[-1] for a in matching_assets)],
            resources=resources, instance=instance,
            run_config={"ops": {"match_quality_report": {"config": {"report_dir": str(report_dir)}}}})
        assert run.success

    seed_of = {r.id: r.fields["_seed_id"] for obj in ("Account", "Contact", "Lead")
               for r in sandbox.ctx.store.records("salesforce", obj)}
    labels = pd.concat([data.contact_labels, data.company_labels])
    entity = dict(zip(labels["record_id"], labels["entity_id"]))
    contacts = warehouse.read_table("contact_matches")
    assert sorted(contacts["enginy_id"]) == sorted(data.enginy["contacts"]["id"])
    found = contacts[contacts["outcome"] != "new"]
    candidates = found["crm_id"].where(found["outcome"] == "matched", found["candidates"]).str.split(", ")
    paired = {(e, seed_of[c]) for e, cs in zip(found["enginy_id"], candidates) for c in cs}
    crm_people = data.crm.contacts.assign(entity=lambda f: f["seed_id"].map(entity))
    truth = {(e, s) for e, ent in zip(data.enginy["contacts"]["id"], data.enginy["contacts"]["id"].map(entity))
             for s in crm_people.loc[crm_people["entity"] == ent, "seed_id"]}
    assert truth and truth <= paired  # every person the CRM holds, as a Contact or as a Lead
    assert set(contacts.loc[contacts["outcome"] == "matched", "crm_object"]) == {"contacts", "leads"}

    companies = warehouse.read_table("company_matches")
    assert sorted(companies["enginy_id"]) == sorted(data.enginy["companies"]["id"])
    matched = companies[companies["outcome"] == "matched"]
    assert len(matched) and all(entity[e] == entity[seed_of[c]] for e, c in zip(matched["enginy_id"], matched["crm_id"]))

    duplicates = warehouse.read_table("crm_duplicates")
    variants = dict(zip(labels["record_id"], labels["variant"]))
    doubled = {entity[s] for s in data.crm.contacts["seed_id"] if "crm_duplicate" in variants[s].split(";")}
    assert doubled <= {entity[seed_of[c]] for c in duplicates.loc[duplicates["crm_object"] != "companies", "crm_id"]}

    summary = warehouse.read_table("match_quality_report")
    assert summary.set_index("object").loc["contacts", "records"] == len(contacts)
    event = run.asset_materializations_for_node("match_quality_report")[0]
    metadata = {k: v.value for k, v in event.metadata.items()}
    assert "### Outcomes" in metadata["report"]
    page = Path(metadata["html_report"])
    assert page.parent == report_dir.resolve() and "<svg" in page.read_text()
    text = html.unescape(page.read_text())
    for says in (f"Run**: {run.run_id}", "CRM**: Salesforce (", f"from {tmp_path / 'integration.yaml'}"):
        assert says in metadata["report"] and says.replace("**", "") in text.replace("</dt><dd>", ": ")
    # Each record beside its id by name, read from the CRM snapshots.
    people = pd.concat([warehouse.read_table(name) for name in ("crm_contacts", "crm_leads")]).set_index("crm_id")
    shown = next(rows for title, rows in sections(metadata["report"]).items()
                 if title.startswith("Duplicate groups inside the CRM: contacts"))
    assert shown and all(people.loc[row["crm_id"], "last_name"] in row["crm_record"] for row in shown)
    # Numbers Dagster plots across materializations, each what the match tables hold.
    duplicate_groups = duplicates.groupby(duplicates["crm_object"] == "companies")["duplicate_group"].nunique()
    for obj, table, groups in (("companies", companies, duplicate_groups[True]),
                               ("contacts", contacts, duplicate_groups[False])):
        assert isinstance(event.metadata[f"{obj}_match_pct"], dg.FloatMetadataValue)
        assert metadata[f"{obj}_match_pct"] == 100 * (table["outcome"] == "matched").sum() / len(table)
        for outcome in ("new", "ambiguous"):
            assert isinstance(event.metadata[f"{obj}_{outcome}"], dg.IntMetadataValue)
            assert metadata[f"{obj}_{outcome}"] == (table["outcome"] == outcome).sum()
        near = table["near_miss_crm_id"].notna().sum() if "near_miss_crm_id" in table else 0
        assert metadata[f"{obj}_near_misses"] == near
        assert metadata[f"{obj}_crm_duplicate_groups"] == groups
    assert metadata["contacts_new"] > 0 and metadata["companies_crm_duplicate_groups"] > 0
