"""The activity push behind the whole pipeline, per CRM: generated Enginy data and a seeded sandbox
→ snapshots → matches → batches → gates → record push → activities, in one Dagster run of the code
location's assets plus crm_activity_push; a second run logs nothing new."""

from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pytest
import yaml

from crm_pipelines.assets.activities import crm_activity_push
from crm_pipelines.config import EXAMPLES_DIR
from crm_pipelines.enginy.database import write_tables
from crm_pipelines.enginy.generator import generate_frames
from crm_pipelines.resources.warehouse import Warehouse
from crm_pipelines.sandbox import crms
from crm_pipelines.sandbox.connection import client_environment
from tests.activities.crms import CRMS

TODAY = datetime.now(timezone.utc).strftime("%Y-%m-%d")


@pytest.fixture(params=sorted(CRMS))
def pipeline(request, sandbox, tmp_path: Path, monkeypatch):
    crm = request.param
    data = generate_frames(120, seed=21)
    enginy_url = f"sqlite:///{tmp_path / 'enginy.sqlite'}"
    write_tables(enginy_url, data.enginy)
    next(m for m in crms.MODULES if m.CRM == crm).seed(sandbox.ctx, data.crm)
    if crm == "hubspot":
        sandbox.ctx.crm_settings("hubspot").update({"burst_limit": None, "search_per_second": None})
    config = yaml.safe_load((EXAMPLES_DIR / f"{crm}.yaml").read_text())
    config["activity_sync"] = {"enabled": True, "include_message_body": True}
    path = tmp_path / "integration.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {"CRM_PIPELINES_CONFIG": str(path), "ENGINY_DATABASE_URL": enginy_url,
           "CRM_PIPELINES_WAREHOUSE_URL": f"duckdb:///{tmp_path / 'wh.duckdb'}", **client_environment(crm, sandbox)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return CRMS[crm], sandbox, Warehouse(url=env["CRM_PIPELINES_WAREHOUSE_URL"])


def everything() -> dg.JobDefinition:
    """The code location's assets with crm_activity_push added, as definitions.py will add it."""
    from crm_pipelines.definitions import MATERIALIZE_ALL, defs

    return dg.Definitions.merge(defs(), dg.Definitions(assets=[crm_activity_push])).resolve_job_def(MATERIALIZE_ALL)


def test_after_the_push_each_sent_event_of_a_crm_contact_is_logged_once_on_it(pipeline) -> None:
    crm, sandbox, warehouse = pipeline
    with dg.instance_for_test() as instance:
        first = everything().execute_in_process(instance=instance, partition_key=TODAY, raise_on_error=False)
        assert first.success, [e.message for e in first.all_events if e.is_failure]
        results = warehouse.read_table("crm_activity_push")
        logged = results[results["status"] == "logged"]
        assert len(logged) > 0 and set(results["status"]) <= {"logged", "waiting"}
        held = {a["key"]: a for a in crm.logged(sandbox)}
        assert sorted(held) == sorted(logged["event_id"]), "exactly the logged events are in the CRM"
        for row in logged.to_dict("records"):
            assert held[row["event_id"]]["record"] == row["crm_record_id"]
            assert held[row["event_id"]]["completed"]
        credited = logged[logged["owner_rule"] != "crm_default"]
        assert len(credited) > 0 and all(held[e]["owner"] == o for e, o in zip(credited["event_id"],
                                                                               credited["owner_id"]))
        second = everything().execute_in_process(instance=instance, partition_key=TODAY, raise_on_error=False)
        assert second.success
    again = warehouse.read_table("crm_activity_push")
    assert set(again.loc[again["status"] == "logged", "event_id"]) >= set(logged["event_id"])
    assert all(a["creates"] == 1 for a in crm.logged(sandbox)), "nothing was logged twice"
    assert len(crm.logged(sandbox)) == (again["status"] == "logged").sum()
