"""Running the rollups for real: Enginy tables written to a warehouse the way the enginy_* assets
write them, then the dbt assets materialized by Dagster — on DuckDB and on PostgreSQL."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from crm_pipelines.assets.dbt import DBT_PROJECT_DIR, build_rollup_assets, rollups_project
from crm_pipelines.jobs import ROLLUPS_STEP
from crm_pipelines.resources.dbt import warehouse_dbt
from crm_pipelines.resources.warehouse import Warehouse, WarehouseIOManager
from tests.conftest import once_per_run
from tests.postgres import warehouse_on  # noqa: F401  (the rollup tests import it from here)

TARGETS = ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]


def load_enginy(warehouse: Warehouse, tables: dict[str, pd.DataFrame]) -> None:
    """What the enginy_<table> assets do: each table copied whole to the warehouse."""
    for name, frame in tables.items():
        warehouse.write_table(f"enginy_{name}", frame)


@dataclass
class Built:
    result: dg.ExecuteInProcessResult
    rollups: pd.DataFrame | None  # campaign_rollups as a downstream asset loads it
    warehouse: Warehouse

    def table(self, name: str) -> pd.DataFrame:
        return self.warehouse.read_table(name)

    def failed_checks(self) -> dict[str, str]:
        return {e.check_name: e.severity.value for e in self.result.get_asset_check_evaluations() if not e.passed}


def build_rollups(warehouse: Warehouse, changed_since: str | None = None) -> Built:
    """Materialize the dbt assets, and an asset downstream of campaign_rollups that loads it
    through the warehouse IO manager as the contact export batch does; ``changed_since``: as the
    Enginy change sensor's runs, only the contacts changed since then."""
    loaded: dict[str, pd.DataFrame] = {}

    @dg.asset(ins={"campaign_rollups": dg.AssetIn()}, io_manager_key="warehouse_io_manager")
    def reads_the_rollups(campaign_rollups: pd.DataFrame) -> None:
        loaded["campaign_rollups"] = campaign_rollups

    result = dg.materialize(
        [build_rollup_assets(), reads_the_rollups],
        resources={"dbt": warehouse_dbt(rollups_project, warehouse), "warehouse": warehouse,
                   "warehouse_io_manager": WarehouseIOManager(warehouse=warehouse)},
        run_config={"ops": {ROLLUPS_STEP: {"config": {"only_changed_since": changed_since}}}},
        raise_on_error=False)
    for artefacts in (DBT_PROJECT_DIR / "target").glob(f"campaign_rollups_dbt-{result.run_id[:7]}-*"):
        shutil.rmtree(artefacts, ignore_errors=True)
    return Built(result, loaded.get("campaign_rollups"), warehouse)


def as_records(frame: pd.DataFrame, key: str = "contact_id") -> dict[str, dict]:
    """Rows by key, with nulls as None and counts as int, whatever the warehouse returned."""
    records = {}
    for row in frame.to_dict("records"):
        clean = {}
        for column, value in row.items():
            if value is None or (not isinstance(value, str) and pd.isna(value)):
                clean[column] = None
            elif column in ("campaign_opens", "campaign_clicks"):
                clean[column] = int(value)
            else:
                clean[column] = value
        records[str(clean.pop(key))] = clean
    return records



def _build_hand_built(directory: Path) -> None:
    from tests.rollups.test_hand_built_rollups import data_set

    with warehouse_on("duckdb", directory) as warehouse:
        load_enginy(warehouse, data_set().tables())
        built = build_rollups(warehouse)
    assert built.result.success, built.failed_checks()


@pytest.fixture(scope="session")
def hand_built_on_duckdb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB warehouse holding the hand-built data set and its rollups, built once per test run.
    Tests that change the data build on a copy of it (``copy_of``)."""
    return once_per_run(tmp_path_factory, "hand-built-rollups", _build_hand_built) / "warehouse.duckdb"


def copy_of(warehouse_file: Path, directory: Path) -> Warehouse:
    """A DuckDB warehouse of a test's own, holding what ``warehouse_file`` holds."""
    return Warehouse(url=f"duckdb:///{shutil.copy(warehouse_file, directory / 'warehouse.duckdb')}")
