"""The change sensors against a real Dagster instance on PostgreSQL and the sandbox CRM: a change
requests exactly one run, no change requests none, a change made while a run is under way is
never skipped, and the Enginy sensor asks for work on the changed records only, is not silenced by a
row stamped in the future and catches a row committed late."""

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from crm_pipelines.crms.registry import example_config
from crm_pipelines.enginy.database import write_tables
from crm_pipelines.enginy.generator import generate_frames
from crm_pipelines.jobs import ENGINY_SYNC, ENGINY_SYNC_AND_PUSH, INCREMENTAL_SYNC
from crm_pipelines.resources.warehouse import Warehouse
from crm_pipelines.crms.registry import client_environment
from tests.connectors.test_snapshot_assets import CRMS
from tests.pipeline import Template, run_after_rollups
from tests.postgres import dagster_instance_on_postgres

pytestmark = pytest.mark.postgres


@pytest.fixture
def instance(tmp_path: Path, monkeypatch):
    with dagster_instance_on_postgres(tmp_path / "dagster_home", monkeypatch) as instance:
        yield instance


def _environment(monkeypatch, tmp_path: Path, crm: str, sandbox, config: Path | None = None) -> Warehouse:
    data = generate_frames(120, seed=21)
    enginy_url = f"sqlite:///{tmp_path / 'enginy.sqlite'}"
    write_tables(enginy_url, data.enginy)
    env = {"CRM_PIPELINES_CONFIG": str(config or example_config(crm)), "ENGINY_DATABASE_URL": enginy_url,
           "CRM_PIPELINES_WAREHOUSE_URL": f"duckdb:///{tmp_path / 'wh.duckdb'}", **client_environment(crm, sandbox)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Warehouse(url=env["CRM_PIPELINES_WAREHOUSE_URL"])


def _tick(defs: dg.Definitions, name: str, instance: dg.DagsterInstance, cursor: str | None):
    repository = defs.get_repository_def()
    with dg.build_sensor_context(instance=instance, cursor=cursor, repository_def=repository,
                                 resources=repository.get_top_level_resources()) as context:
        return repository.get_sensor_def(name).evaluate_tick(context)


def _run(defs: dg.Definitions, request: dg.RunRequest, instance: dg.DagsterInstance,
         job_name: str = INCREMENTAL_SYNC) -> dg.ExecuteInProcessResult:
    job = defs.resolve_job_def(request.job_name or job_name)
    result = job.execute_in_process(instance=instance, asset_selection=request.asset_selection,
                                    run_config=request.run_config or {}, tags=request.tags)
    assert result.success
    return result


@pytest.mark.parametrize("crm_name", sorted(CRMS))
def test_the_crm_sensor_requests_one_run_per_change_and_never_skips_one(
        crm_name: str, sandbox, instance, tmp_path: Path, monkeypatch) -> None:
    from crm_pipelines.definitions import defs as load

    spec = CRMS[crm_name]
    spec.seed(sandbox.ctx, generate_frames(200, seed=11).crm)
    warehouse = _environment(monkeypatch, tmp_path, crm_name, sandbox)
    defs = load()

    first = _tick(defs, "crm_change_sensor", instance, None)
    assert len(first.run_requests) == 1, "the first tick syncs every object once"
    ids = list(warehouse.read_table("crm_contacts")["crm_id"]) if "crm_contacts" in warehouse.table_names() else []
    assert ids == []

    # A change lands after the tick, while the requested run is still to come …
    contact = next(r.id for r in sandbox.ctx.store.records(crm_name, spec.contacts))
    spec.update_title(spec.resource(sandbox), contact, "During The Run")
    _run(defs, first.run_requests[0], instance)
    # … and another one after the run has pulled.
    other = next(r.id for r in sandbox.ctx.store.records(crm_name, spec.contacts) if r.id != contact)
    spec.update_title(spec.resource(sandbox), other, "After The Run")

    second = _tick(defs, "crm_change_sensor", instance, first.cursor)
    assert len(second.run_requests) == 1
    selected = {key.path[-1] for key in second.run_requests[0].asset_selection}
    # The snapshots are one step; the objects that did not change find nothing new.
    assert selected == {"crm_companies", "crm_contacts", "crm_leads", "crm_associations"}
    assert second.run_requests[0].tags["crm_pipelines/changed_objects"] == "contacts"
    synced = _run(defs, second.run_requests[0], instance)
    pulled = {e.asset_key.path[-1]: e.materialization.metadata for e in synced.get_asset_materialization_events()}
    assert {name: pulled[name]["mode"].value for name in ("crm_companies", "crm_contacts")} == {
        "crm_companies": "incremental", "crm_contacts": "incremental"}
    assert pulled["crm_companies"]["records_new"].value + pulled["crm_companies"]["records_updated"].value == 0
    titles = warehouse.read_table("crm_contacts").set_index("crm_id")["job_title"]
    assert titles[contact] == "During The Run" and titles[other] == "After The Run"

    quiet = _tick(defs, "crm_change_sensor", instance, second.cursor)
    assert quiet.run_requests == [] and "nothing changed" in quiet.skip_message
    assert quiet.cursor in (None, second.cursor)


@pytest.mark.parametrize("crm_name", ["hubspot"])
def test_the_crm_sensor_waits_for_an_unfinished_sync_and_then_catches_up(
        crm_name: str, sandbox, instance, tmp_path: Path, monkeypatch) -> None:
    from crm_pipelines.definitions import defs as load

    spec = CRMS[crm_name]
    spec.seed(sandbox.ctx, generate_frames(50, seed=11).crm)
    _environment(monkeypatch, tmp_path, crm_name, sandbox)
    defs = load()
    first = _tick(defs, "crm_change_sensor", instance, None)
    _run(defs, first.run_requests[0], instance)

    job = defs.resolve_job_def(INCREMENTAL_SYNC)
    unfinished = instance.create_run_for_job(job, status=dg.DagsterRunStatus.STARTED)
    contact = next(r.id for r in sandbox.ctx.store.records(crm_name, spec.contacts))
    spec.update_title(spec.resource(sandbox), contact, "While Another Sync Runs")
    waiting = _tick(defs, "crm_change_sensor", instance, first.cursor)
    assert waiting.run_requests == [] and unfinished.run_id in waiting.skip_message
    assert waiting.cursor in (None, first.cursor), "the cursor stays where the finished runs left it"

    instance.report_run_failed(unfinished)
    after = _tick(defs, "crm_change_sensor", instance, first.cursor)
    assert len(after.run_requests) == 1


def _touch(enginy_url: str, ids: list[str], title: str, at: datetime | None = None) -> datetime:
    engine = sa.create_engine(enginy_url)
    now = at or datetime.now(timezone.utc).replace(tzinfo=None)
    with engine.begin() as conn:
        for contact_id in ids:
            conn.execute(sa.text("UPDATE contacts SET job_title = :t, updated_at = :u WHERE id = :i"),
                         {"t": title, "u": now, "i": contact_id})
    engine.dispose()
    return now


@pytest.mark.slow
def test_the_enginy_sensor_requests_matching_and_batches_for_the_changed_records_only(
        sandbox, instance, template: Template, tmp_path: Path, monkeypatch) -> None:
    """After a first sync (the template's Enginy copies and rollups, then the rest of the pipeline)
    the sensor's runs are enginy_sync and enginy_sync_and_push, dbt included."""
    from crm_pipelines.definitions import defs as load

    crm = "hubspot"
    CRMS[crm].seed(sandbox.ctx, template.data.crm)
    sandbox.ctx.crm_settings("hubspot").update({"burst_limit": None, "search_per_second": None})
    enginy_url, warehouse_url = template.copy_to(tmp_path)
    env = {"CRM_PIPELINES_CONFIG": str(example_config(crm)), "ENGINY_DATABASE_URL": enginy_url,
           "CRM_PIPELINES_WAREHOUSE_URL": warehouse_url, **client_environment(crm, sandbox)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    warehouse = Warehouse(url=warehouse_url)
    defs = load()
    assert run_after_rollups(instance).success
    everyone = len(warehouse.read_table("contact_matches"))

    first = _tick(defs, "enginy_change_sensor", instance, None)
    assert [r.job_name for r in first.run_requests] == [ENGINY_SYNC] and first.run_requests[0].run_config == {}
    assert _tick(defs, "enginy_change_sensor", instance, first.cursor).run_requests == []

    contacts = warehouse.read_table("enginy_contacts")
    outcomes = warehouse.read_table("contact_matches").assign(enginy_id=lambda f: f["enginy_id"].astype(str))
    # One already in the CRM (its batch row reads the CRM record by key), one new.
    changed = [outcomes.loc[outcomes["outcome"] == o, "enginy_id"].iloc[0] for o in ("matched", "new")]
    _touch(enginy_url, changed, "Head of Partnerships")
    # An event that landed meanwhile, a day after the newest one copied: a scoped run copies only
    # the last days of events, this one among them, and keeps the older ones.
    engine = sa.create_engine(enginy_url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO campaign_events SELECT 'late-event', campaign_id, step_id, contact_id, "
                             "identity_id, channel, event_type, datetime(occurred_at, '+1 day'), subject, body "
                             "FROM campaign_events ORDER BY occurred_at DESC LIMIT 1"))
        events = conn.execute(sa.text("SELECT count(*) FROM campaign_events")).scalar_one()
    engine.dispose()
    request = _tick(defs, "enginy_change_sensor", instance, first.cursor).run_requests
    assert len(request) == 1 and request[0].job_name == ENGINY_SYNC
    # The scope starts five minutes before the cursor (rows committed late): those rows come again.
    since = request[0].tags["crm_pipelines/changed_since"]
    engine = sa.create_engine(enginy_url)
    with engine.connect() as conn:
        scoped = {str(i) for (i,) in conn.execute(sa.text("SELECT id FROM contacts WHERE updated_at > :s"),
                                                  {"s": datetime.fromisoformat(since).replace(tzinfo=None)})}
    engine.dispose()
    assert set(changed) <= scoped and len(scoped) <= len(changed) + 2
    result = _run(defs, request[0], instance)
    meta = {e.asset_key.path[-1]: e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert meta["contact_matches"]["records_rematched"].value == len(scoped)
    assert len(warehouse.read_table("contact_matches")) == everyone, "the other records keep their last match"
    assert meta["enginy_contacts"]["rows_copied"].value == len(scoped)
    assert meta["enginy_campaign_events"]["rows_copied"].value < events
    copied_events = warehouse.read_table("enginy_campaign_events")
    assert len(copied_events) == events and "late-event" in set(copied_events["id"])
    copied = warehouse.read_table("enginy_contacts").assign(id=lambda f: f["id"].astype(str)).set_index("id")
    assert len(copied) == len(contacts) and set(copied.loc[changed, "job_title"]) == {"Head of Partnerships"}
    batch = warehouse.read_table("contact_export_batch")
    assert sorted(batch["enginy_id"].astype(str)) == sorted(scoped)
    assert "crm_push_results" not in meta, "without automatic export the batch waits for export_push"
    # Read by key, the changed records' rows are what a batch of every record says of them.
    _run(defs, dg.RunRequest(job_name=ENGINY_SYNC), instance)
    full = warehouse.read_table("contact_export_batch")
    same = ["enginy_id", "action", "crm_id", "fields", "diff", "owner_id", "company_crm_id", "reason", "outcome"]
    assert len(full) == len(contacts)

    def rows(frame: pd.DataFrame) -> list[dict]:
        frame = frame[same].astype(object)
        return frame.where(frame.notna(), None).sort_values("enginy_id").to_dict("records")

    assert rows(full[full["enginy_id"].astype(str).isin(scoped)]) == rows(batch)

    config = yaml.safe_load((example_config(crm)).read_text())
    config["automation"] = {"automatic_export": True}
    path = tmp_path / "automatic.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("CRM_PIPELINES_CONFIG", str(path))
    defs = load()
    cursor = _tick(defs, "enginy_change_sensor", instance, first.cursor).cursor
    _touch(enginy_url, changed[:1], "Chief Partnerships Officer")
    automatic = _tick(defs, "enginy_change_sensor", instance, cursor).run_requests
    assert [r.job_name for r in automatic] == [ENGINY_SYNC_AND_PUSH]
    pushed = _run(defs, automatic[0], instance)
    assert any(e.asset_key.path[-1] == "crm_push_results" for e in pushed.get_asset_materialization_events())
    results = warehouse.read_table("crm_push_results")
    contacts_pushed = results[results["object"] == "contacts"]
    # The second change, and the first (five minutes before the cursor, in the overlap; never pushed).
    assert sorted(contacts_pushed["enginy_id"].astype(str)) == sorted(changed)


def test_a_row_stamped_in_the_future_does_not_silence_the_enginy_sensor_and_a_late_commit_is_caught(
        instance, tmp_path: Path, monkeypatch) -> None:
    from crm_pipelines.definitions import defs as load

    enginy_url = f"sqlite:///{tmp_path / 'enginy.sqlite'}"
    write_tables(enginy_url, generate_frames(40, seed=5).enginy)
    monkeypatch.setenv("ENGINY_DATABASE_URL", enginy_url)
    monkeypatch.setenv("CRM_PIPELINES_CONFIG", str(example_config("salesforce")))
    defs = load()
    ids = [str(i) for i in pd.read_sql("SELECT id FROM contacts ORDER BY id", sa.create_engine(enginy_url))["id"]]
    engine = sa.create_engine(enginy_url)
    with engine.begin() as conn:  # a bad import stamps one contact a year ahead
        conn.execute(sa.text("UPDATE contacts SET updated_at = :u WHERE id = :i"),
                     {"u": datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(days=365), "i": ids[0]})
    engine.dispose()
    first = _tick(defs, "enginy_change_sensor", instance, None)
    assert len(first.run_requests) == 1
    assert datetime.fromisoformat(json.loads(first.cursor)["covered"]) <= datetime.now(timezone.utc)

    touched = _touch(enginy_url, ids[1:2], "Head of Partnerships")
    second = _tick(defs, "enginy_change_sensor", instance, first.cursor)
    assert len(second.run_requests) == 1, "the change after the future-stamped row is seen"
    assert _tick(defs, "enginy_change_sensor", instance, second.cursor).run_requests == []

    # A row committed now whose updated_at is a minute older than the cursor: the sensor sees the
    # overlap grow, and the run's scope (five minutes before the cursor) copies it.
    _touch(enginy_url, ids[2:3], "Late Committer", at=touched - timedelta(minutes=1))
    [late] = _tick(defs, "enginy_change_sensor", instance, second.cursor).run_requests
    since = datetime.fromisoformat(late.run_config["ops"]["enginy_contacts"]["config"]["only_changed_since"])
    assert since.replace(tzinfo=None) < touched - timedelta(minutes=1)
    assert "1 committed late" in late.tags["crm_pipelines/enginy_changes"]


@pytest.mark.slow
def test_a_sync_whose_worker_is_killed_is_reported_failed_and_the_next_sync_goes_on(
        sandbox, instance, tmp_path: Path, monkeypatch) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from crm_pipelines.definitions import defs as load
    from crm_pipelines.sandbox.faults import FaultRule

    crm_name = "hubspot"
    spec = CRMS[crm_name]
    spec.seed(sandbox.ctx, generate_frames(50, seed=11).crm)
    _environment(monkeypatch, tmp_path, crm_name, sandbox)
    defs = load()
    first = _tick(defs, "crm_change_sensor", instance, None)
    # The sync, run as `dagster job execute` runs it, on this instance; the CRM answers slowly, so
    # the run is under way when its process is killed, as the kernel's OOM killer would.
    sandbox.ctx.faults.add(FaultRule(crm=crm_name, kind="latency", latency_ms=60_000))
    worker = subprocess.Popen(
        [sys.executable, "-m", "dagster", "job", "execute", "-m", "crm_pipelines.definitions", "-j", INCREMENTAL_SYNC],
        env={**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster_home")}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not instance.get_runs(dg.RunsFilter(job_name=INCREMENTAL_SYNC, statuses=[dg.DagsterRunStatus.STARTED])):
            assert time.monotonic() < deadline and worker.poll() is None, "the sync never started"
            time.sleep(0.5)
        [run] = instance.get_runs(dg.RunsFilter(job_name=INCREMENTAL_SYNC))
        waiting = _tick(defs, "crm_change_sensor", instance, first.cursor)
        assert waiting.run_requests == [] and run.run_id in waiting.skip_message, "a live run is waited for"
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    sandbox.ctx.faults.clear()
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED, "nothing told Dagster"

    after = _tick(defs, "crm_change_sensor", instance, first.cursor)
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
    [again] = after.run_requests  # the cursor had moved past what the killed run was to pull
    assert again.job_name == INCREMENTAL_SYNC and again.tags["crm_pipelines/again_after"] == run.run_id
    _run(defs, again, instance)
    assert _tick(defs, "crm_change_sensor", instance, first.cursor).run_requests == [], "and then waits for changes"
