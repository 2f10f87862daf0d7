"""The whole pipeline for end-to-end tests, built once where it does not depend on the test.

Every end-to-end test starts from the same generated Enginy data (120 contacts, seed 21), and
the Enginy copies and the dbt campaign rollups depend only on that data, not on the CRM. So a
test run builds them once (for all its xdist workers), through the code location's own job, into
a template warehouse; each test copies the template's two files (the Enginy database and the
warehouse) and runs the rest of the job — snapshots, matching, batches, gates, push,
activities — on its own copy.
The full job, dbt included, still runs end to end in the demo, the sensor and nightly tests.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from crm_pipelines.assets.enginy import ENGINY_GROUP
from crm_pipelines.enginy.database import write_tables
from crm_pipelines.enginy.generator import GeneratedData, generate_frames

ROLLUPS_GROUP = "rollups"
# Everything the job does after the Enginy copies and the rollups, which the template holds.
AFTER_ROLLUPS = dg.AssetSelection.all() - dg.AssetSelection.groups(ENGINY_GROUP, ROLLUPS_GROUP)


@dataclass(frozen=True)
class Template:
    """Generated data, its Enginy database, and a warehouse holding its Enginy copies and rollups."""

    data: GeneratedData
    enginy: Path
    warehouse: Path

    def copy_to(self, directory: Path) -> tuple[str, str]:
        """The template's files copied into ``directory``: (Enginy URL, warehouse URL)."""
        enginy = shutil.copy(self.enginy, directory / "enginy.sqlite")
        warehouse = shutil.copy(self.warehouse, directory / "wh.duckdb")
        return f"sqlite:///{enginy}", f"duckdb:///{warehouse}"


def instance_in_memory() -> dg.DagsterInstance:
    """A Dagster instance (a context manager) that keeps its runs and events in memory. The
    pipeline after the rollups takes about 3.4 s a run on it against 5 s on instance_for_test's
    SQLite files, and these tests check the pipeline, not Dagster's storage: the demo and UI tests
    run on a SQLite instance and the sensor tests on PostgreSQL."""
    return dg.DagsterInstance.ephemeral()


def run(instance: dg.DagsterInstance, selection: dg.AssetSelection,
        run_config: dict | None = None) -> dg.ExecuteInProcessResult:
    """materialize_all of the code location, as the environment configures it now, for ``selection``."""
    from crm_pipelines.definitions import MATERIALIZE_ALL, defs

    definitions = defs()
    keys = list(selection.resolve(definitions.resolve_asset_graph()))
    return definitions.resolve_job_def(MATERIALIZE_ALL).execute_in_process(
        instance=instance, run_config=run_config or {}, asset_selection=keys,
        raise_on_error=False)


def template_in(directory: Path) -> Template:
    """The template whose files ``build_template`` wrote into ``directory``."""
    return Template(generate_frames(120, seed=21), directory / "enginy.sqlite", directory / "wh.duckdb")


def build_template(directory: Path) -> None:
    template = template_in(directory)
    data, enginy, warehouse = template.data, template.enginy, template.warehouse
    write_tables(f"sqlite:///{enginy}", data.enginy)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ENGINY_DATABASE_URL", f"sqlite:///{enginy}")
        patch.setenv("CRM_PIPELINES_WAREHOUSE_URL", f"duckdb:///{warehouse}")
        patch.delenv("CRM_PIPELINES_WAREHOUSE_SCHEMA", raising=False)
        with instance_in_memory() as instance:
            built = run(instance, dg.AssetSelection.groups(ENGINY_GROUP, ROLLUPS_GROUP))
    assert built.success, [e.message for e in built.all_events if e.is_failure]


def run_after_rollups(instance: dg.DagsterInstance, run_config: dict | None = None) -> dg.ExecuteInProcessResult:
    """The rest of materialize_all, on a copy of the template."""
    return run(instance, AFTER_ROLLUPS, run_config)
