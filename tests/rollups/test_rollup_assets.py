"""The dbt models in the code location: where they sit in the asset graph, which warehouse dbt
writes, and runs that share a DuckDB file with other steps without failing or hanging."""

import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from crm_pipelines.assets.dbt import prepared_manifest
from crm_pipelines.config import CAMPAIGN_PROPERTIES
from crm_pipelines.definitions import defs
from crm_pipelines.enginy.database import write_tables
from crm_pipelines.enginy.generator import generate_frames
from crm_pipelines.enginy.schema import TABLES
from crm_pipelines.resources.dbt import dbt_profile_environment
from crm_pipelines.resources.warehouse import Warehouse
from tests.rollups.conftest import build_rollups, load_enginy, warehouse_on
from tests.rollups.test_hand_built_rollups import data_set

MODELS = {"stg_enginy__contacts", "stg_enginy__identities", "stg_enginy__campaigns", "stg_enginy__campaign_steps",
          "stg_enginy__campaign_contacts", "stg_enginy__campaign_events", "stg_enginy__contact_tags",
          "enginy_quarantine", "rollup_changed_contacts", "campaign_rollups_by_campaign", "campaign_rollups"}


def test_the_rollups_sit_between_the_enginy_copies_and_the_contact_export() -> None:
    graph = defs().resolve_asset_graph()
    rollups = {key.path[-1] for key in graph.get_all_asset_keys() if graph.get(key).group_name == "rollups"}
    assert rollups == MODELS
    staging_parents = {parent.path[-1] for model in MODELS if model.startswith("stg_")
                       for parent in graph.get(dg.AssetKey(model)).parent_keys}
    assert staging_parents == {f"enginy_{t.name}" for t in TABLES} - {"enginy_users", "enginy_companies"} | {
        "enginy_quarantine"}, "the staging models leave out the rows enginy_quarantine lists"
    quarantined = {parent.path[-1] for parent in graph.get(dg.AssetKey("enginy_quarantine")).parent_keys}
    assert quarantined == {f"enginy_{t.name}" for t in TABLES} - {"enginy_users", "enginy_campaign_contacts",
                                                                   "enginy_contact_conversation_tags"}
    scope = graph.get(dg.AssetKey("rollup_changed_contacts"))
    assert scope.child_keys == {dg.AssetKey("campaign_rollups_by_campaign"), dg.AssetKey("campaign_rollups")}, \
        "the contacts a scoped build rebuilds are listed before either rollup model is built"
    assert dg.AssetKey("campaign_rollups") in graph.get(dg.AssetKey("contact_export_batch")).parent_keys
    checks = {key.name for key in graph.asset_check_keys if key.asset_key == dg.AssetKey("campaign_rollups")}
    assert {"unique_campaign_rollups_contact_id", "assert_every_contact_has_one_rollup",
            "assert_tag_categories_align_with_tags"} <= checks


def test_the_rollup_columns_are_the_configs_campaign_properties() -> None:
    """The export maps CAMPAIGN_PROPERTIES names to CRM fields; the model's enforced contract has
    exactly those columns, after the contact id."""
    manifest = json.loads(prepared_manifest().read_text())
    model = manifest["nodes"]["model.crm_pipelines.campaign_rollups"]
    assert model["config"]["contract"]["enforced"]
    assert list(model["columns"]) == ["contact_id", *CAMPAIGN_PROPERTIES]


def test_dbt_writes_where_the_warehouse_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """dbt runs inside dbt_project/, so a relative DuckDB path is made absolute; a PostgreSQL URL
    is taken apart with its escaped password decoded."""
    monkeypatch.chdir(tmp_path)
    assert dbt_profile_environment(Warehouse(url="duckdb:///data/wh.duckdb")) == {
        "CRM_PIPELINES_DBT_TARGET": "duckdb", "CRM_PIPELINES_WAREHOUSE_SCHEMA": "main",
        "CRM_PIPELINES_DBT_DUCKDB_PATH": str(tmp_path / "data" / "wh.duckdb")}
    assert dbt_profile_environment(Warehouse(url="postgresql://etl:p%40ss@db.internal:6543/wh", schema_name="crm")) == {
        "CRM_PIPELINES_DBT_TARGET": "postgres", "CRM_PIPELINES_WAREHOUSE_SCHEMA": "crm",
        "CRM_PIPELINES_DBT_PG_HOST": "db.internal", "CRM_PIPELINES_DBT_PG_PORT": "6543",
        "CRM_PIPELINES_DBT_PG_USER": "etl", "CRM_PIPELINES_DBT_PG_PASSWORD": "p@ss", "CRM_PIPELINES_DBT_PG_DBNAME": "wh"}


def _hold(path: str, seconds: float, ready) -> None:
    conn = duckdb.connect(path)
    ready.set()
    time.sleep(seconds)
    conn.close()


@pytest.mark.slow
def test_dbt_waits_for_a_duckdb_file_another_step_holds(tmp_path: Path) -> None:
    """Under the multiprocess executor another step may be writing the warehouse when dbt starts;
    DuckDB admits one process per file, so dbt waits for it rather than failing the run. The file
    is held for longer than dbt takes to start and parse (about six seconds here), so dbt's first
    connection meets the lock; not much longer, as dbt's retries back off 1, 2, 4, 8 … seconds."""
    with warehouse_on("duckdb", tmp_path) as warehouse:
        load_enginy(warehouse, data_set().tables())
        ready = multiprocessing.Event()
        holder = multiprocessing.Process(target=_hold, args=(str(warehouse.duckdb_path), 12, ready))
        holder.start()
        assert ready.wait(20)
        started = time.monotonic()
        built = build_rollups(warehouse)
        holder.join()
    assert built.result.success, built.failed_checks()
    assert holder.exitcode == 0
    assert time.monotonic() - started > 11, "the build cannot end before the file is free"
    assert len(built.rollups) == len(data_set().rows["contacts"])


@pytest.mark.slow
def test_the_code_locations_job_builds_the_rollups_with_steps_in_parallel_processes(tmp_path: Path) -> None:
    """What `dagster asset materialize` (and the UI) does: the multiprocess executor runs the
    Enginy copies dbt reads side by side on one DuckDB file, then dbt; nothing fails on the file
    lock and nothing hangs. The warehouse path is relative, as in the defaults."""
    data = generate_frames(300, seed=4)
    enginy_url = f"sqlite:///{tmp_path / 'enginy.sqlite'}"
    write_tables(enginy_url, data.enginy)
    (tmp_path / "home").mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home"), "ENGINY_DATABASE_URL": enginy_url,
           "CRM_PIPELINES_WAREHOUSE_URL": "duckdb:///data/warehouse.duckdb"}
    env.pop("CRM_PIPELINES_WAREHOUSE_SCHEMA", None)
    graph = defs().resolve_asset_graph()
    sources = {parent.path[-1] for model in MODELS for parent in graph.get(dg.AssetKey(model)).parent_keys
               if parent.path[-1].startswith("enginy_") and parent.path[-1] not in MODELS}
    selection = ",".join([*sorted(sources), *sorted(MODELS)])
    dagster = Path(sys.executable).with_name("dagster")
    run = subprocess.run([str(dagster), "asset", "materialize", "-m", "crm_pipelines.definitions",
                          "--select", selection], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "RUN_SUCCESS" in run.stderr
    warehouse = Warehouse(url=f"duckdb:///{tmp_path / 'data' / 'warehouse.duckdb'}")
    assert len(warehouse.read_table("campaign_rollups")) == len(data.enginy["contacts"])


def test_dbt_is_asked_its_version_only_when_it_is_not_the_dbt_beside_this_python(tmp_path: Path) -> None:
    """The version dagster-dbt needs is the imported dbt-core's for the dbt beside this Python
    (no `dbt --version` per step); another executable is still asked."""
    from dagster_dbt.compat import DBT_PYTHON_VERSION

    from crm_pipelines.assets.dbt import rollups_project
    from crm_pipelines.resources.dbt import WarehouseDbtResource, warehouse_dbt

    warehouse = Warehouse(url=f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    beside = warehouse_dbt(rollups_project, warehouse)
    assert Path(beside.dbt_executable) == Path(sys.executable).with_name("dbt")
    assert beside._cli_version == DBT_PYTHON_VERSION

    other = tmp_path / "bin" / "dbt"
    other.parent.mkdir()
    other.write_text("#!/bin/sh\necho 'Core:'; echo '  - installed: 1.10.3'\n")
    other.chmod(0o755)
    elsewhere = WarehouseDbtResource(project_dir=rollups_project, warehouse=warehouse, dbt_executable=str(other))
    assert str(elsewhere._cli_version) == "1.10.3"


def test_a_dbt_step_starts_from_the_last_parse_for_its_warehouse(tmp_path: Path) -> None:
    """Each dbt step has a target path of its own; the partial parse the last step left for the
    same warehouse is put in it, so dbt parses no file again (every file, without it)."""
    from crm_pipelines.assets.dbt import DBT_PROJECT_DIR
    from crm_pipelines.resources.dbt import target_path_with_parse

    def files_parsed(warehouse: Warehouse, target: Path) -> int:
        env = {**os.environ, **dbt_profile_environment(warehouse)}
        subprocess.run([str(Path(sys.executable).with_name("dbt")), "parse", "--quiet", "--target-path", str(target)],
                       cwd=DBT_PROJECT_DIR, env=env, check=True, capture_output=True, timeout=120)
        return json.loads((target / "perf_info.json").read_text())["parsed_path_count"]

    with warehouse_on("duckdb", tmp_path) as warehouse:
        load_enginy(warehouse, data_set().tables())
        fresh = target_path_with_parse(DBT_PROJECT_DIR, warehouse, "first", "run")
        try:
            assert not fresh.exists() and files_parsed(warehouse, fresh) > 100
        finally:
            shutil.rmtree(fresh, ignore_errors=True)
        assert build_rollups(warehouse).result.success
        seeded = target_path_with_parse(DBT_PROJECT_DIR, warehouse, "next", "run")
        try:
            assert files_parsed(warehouse, seeded) == 0
        finally:
            shutil.rmtree(seeded, ignore_errors=True)
