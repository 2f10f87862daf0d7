"""Enginy rows that break the data contract's key — a contact without an id, a contact id two rows
hold — are quarantined: the run goes on, dbt builds the rollups on the rest, the export pushes
every other contact and lists the quarantined rows in export_rejections with what to fix."""

import sqlite3
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from crm_pipelines.crms.registry import client_environment, emulator, example_config
from crm_pipelines.enginy.database import write_tables
from crm_pipelines.enginy.generator import generate_frames
from crm_pipelines.resources.warehouse import Warehouse
from tests.export.test_export_end_to_end import CONTACT_OBJECT, ENGINY_KEY
from tests.pipeline import instance_in_memory, run

CRM = "salesforce"


def _enginy_with_broken_keys(path: Path, contacts: pd.DataFrame) -> None:
    """Enginy's contacts as a table without a primary key (a customer's export, say), holding ``contacts``."""
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE contacts")
        contacts.to_sql("contacts", conn, index=False)


@pytest.fixture(scope="module")
def quarantined_run(sandbox_server, tmp_path_factory):
    from tests.conftest import emptied

    sandbox = emptied(sandbox_server)
    directory = tmp_path_factory.mktemp("quarantine")
    data = generate_frames(2000, seed=23)
    emulator(CRM).seed(sandbox.ctx, data.crm)
    contacts = data.enginy["contacts"]
    twin_id = str(contacts["id"].iloc[7])
    twin = contacts.iloc[[7]].assign(first_name="Twin", email="twin@example.org")
    nameless = contacts.iloc[[8]].assign(id=None, first_name="Nameless", last_name="Noid", email="noid@example.org",
                                         linkedin_url=None)
    enginy = directory / "enginy.sqlite"
    write_tables(f"sqlite:///{enginy}", data.enginy)
    _enginy_with_broken_keys(enginy, pd.concat([contacts, twin, nameless], ignore_index=True))
    warehouse = Warehouse(url=f"duckdb:///{directory / 'wh.duckdb'}")
    env = {"CRM_PIPELINES_CONFIG": str(example_config(CRM)), "ENGINY_DATABASE_URL": f"sqlite:///{enginy}",
           "CRM_PIPELINES_WAREHOUSE_URL": warehouse.url, **client_environment(CRM, sandbox)}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        patch.delenv("CRM_PIPELINES_WAREHOUSE_SCHEMA", raising=False)
        with instance_in_memory() as instance:
            result = run(instance, dg.AssetSelection.all())
    held = [r.fields for r in sandbox.ctx.store.records(CRM, CONTACT_OBJECT[CRM])]
    return dict(result=result, warehouse=warehouse, twin_id=twin_id, good=set(contacts["id"]) - {twin_id},
                held=held)


def test_a_run_with_a_contact_without_id_and_an_id_twice_succeeds_and_builds_the_rollups(quarantined_run) -> None:
    result, warehouse = quarantined_run["result"], quarantined_run["warehouse"]
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    rollups = warehouse.read_table("campaign_rollups", ("contact_id",))
    assert set(rollups["contact_id"]) == quarantined_run["good"]


def test_every_other_contact_is_pushed_and_none_of_the_quarantined(quarantined_run) -> None:
    warehouse, twin_id = quarantined_run["warehouse"], quarantined_run["twin_id"]
    results = warehouse.read_table("crm_push_results")
    contacts = results[results["object"].eq("contacts")]
    assert set(contacts["enginy_id"]) == quarantined_run["good"]
    assert not contacts["status"].isin(["failed", "pending"]).any(), contacts["status"].value_counts()
    held = quarantined_run["held"]
    assert not [f for f in held if f.get(ENGINY_KEY[CRM]) == twin_id], "the id two rows hold is never pushed"
    assert not [f for f in held if f.get("LastName") == "Noid" or f.get("FirstName") in ("Twin", "Nameless")]
    assert {f.get(ENGINY_KEY[CRM]) for f in held} >= set(contacts.loc[contacts["status"].eq("created"), "enginy_id"])


def test_both_problems_are_in_export_rejections_with_a_reason_a_person_can_act_on(quarantined_run) -> None:
    warehouse, twin_id = quarantined_run["warehouse"], quarantined_run["twin_id"]
    rejections = warehouse.read_table("export_rejections")
    source = rejections[rejections["field"].eq("id")]
    twins = source[source["enginy_id"].eq(twin_id)]
    assert len(twins) == 2 and set(twins["object"]) == {"contacts"}
    assert twins["reason"].str.contains(f"Enginy contact id {twin_id} is held by 2 rows of contacts").all()
    assert twins["reason"].str.contains("keep one row per id in Enginy").all()
    nameless = source[source["enginy_id"].isna()]
    assert len(nameless) == 1 and "has no id" in nameless["reason"].iloc[0]
    assert '"last_name":"Noid"' in nameless["source_row"].iloc[0], "what identifies a row without id"
    assert len(source) == 3
