"""The campaign rollups: the dbt models in dbt_project/ as Dagster assets.

Each dbt source is the enginy_<table> asset that copied the table into the warehouse, so the
models run after those copies and before the export batches that read ``campaign_rollups``;
each dbt test is an asset check on the model it tests.

The manifest is made the way dagster-dbt recommends: at build time (scripts/setup.sh runs
``dagster-dbt project prepare-and-package --file crm_pipelines/assets/dbt.py``) and on every
load under ``dagster dev`` (``prepare_if_dev``). When the definitions load and it is missing or
older than the project's files, it is parsed then, so a fresh clone or an edited model never
needs a manual ``dbt parse``.
"""

import contextlib
import io
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
from dagster_dbt import DagsterDbtTranslator, DbtProject, dbt_assets
from pydantic import Field

from crm_pipelines.jobs import ROLLUPS_STEP
from crm_pipelines.resources.dbt import WarehouseDbtResource, dbt_on_path, keep_parse, target_path_with_parse
from crm_pipelines.resources.warehouse import Warehouse

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"

rollups_project = DbtProject(project_dir=DBT_PROJECT_DIR)


class EnginySourcesTranslator(DagsterDbtTranslator):
    """A dbt source table is the asset that wrote it: its warehouse name (``enginy_contacts``)."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey(dbt_resource_props["identifier"])
        return super().get_asset_key(dbt_resource_props)


def _manifest_is_stale(project: DbtProject) -> bool:
    if not project.manifest_path.exists():
        return True
    built = project.manifest_path.stat().st_mtime
    sources = [project.project_dir / "dbt_project.yml", project.project_dir / "profiles.yml",
               *(path for folder in ("models", "macros", "tests")
                 for path in (project.project_dir / folder).rglob("*") if path.suffix in {".sql", ".yml"})]
    return any(path.stat().st_mtime > built for path in sources)


def prepared_manifest(project: DbtProject = rollups_project) -> Path:
    """The project's manifest.json, parsed first if it is missing or stale.

    Not ``DbtProject.prepare_if_dev()``: under `dagster dev` it runs `dbt --version` and `dbt parse`
    in every process that loads the code location — each run a sensor launches paid ten seconds
    of it before its first step — while a parse is only needed when a file of the project changed."""
    with dbt_on_path():
        if _manifest_is_stale(project):
            project.manifest_path.parent.mkdir(parents=True, exist_ok=True)
            project.preparer.prepare(project)
    return project.manifest_path


def _with_row_counts(context: dg.AssetExecutionContext, events: list[Any], warehouse: Warehouse) -> Iterator[Any]:
    """The run's events, each model's output carrying its table and row count as the IO manager's do.

    Counted after dbt has exited: on DuckDB the dbt process holds the file while it runs."""
    for event in events:
        if isinstance(event, dg.Output):
            table = context.asset_key_for_output(event.output_name).path[-1]
            # Table names come from the manifest, never from data; Warehouse.table refuses anything odd.
            rows = warehouse.query(f"SELECT count(*) AS n FROM {warehouse.table(table)}")
            event = event.with_metadata({**event.metadata, "dagster/row_count": int(rows["n"].iloc[0]),
                                         "warehouse_table": dg.MetadataValue.text(f"{warehouse.schema}.{table}")})
        yield event


class RollupScope(dg.Config):
    only_changed_since: str | None = Field(None, description=(
        "An ISO time (the Enginy change sensor sets its cursor): rebuild the campaign rollups of only the "
        "contacts updated, with an event, added to a campaign or tagged since then, and keep the others' rows. "
        "Empty: every contact's."))

    def since(self) -> str:
        """The time as dbt reads it (macros/rollup_scope.sql), checked to be a time: it goes into SQL."""
        if not self.only_changed_since:
            return ""
        at = pd.Timestamp(self.only_changed_since)
        return (at.tz_localize("UTC") if at.tzinfo is None else at).isoformat()


def build_rollup_assets() -> dg.AssetsDefinition:
    """The dbt models and their tests as one multi-asset, built from the (prepared) manifest."""

    @dbt_assets(manifest=prepared_manifest(), project=rollups_project, name=ROLLUPS_STEP,
                dagster_dbt_translator=EnginySourcesTranslator(), io_manager_key="warehouse_io_manager")
    def campaign_rollups_dbt(context: dg.AssetExecutionContext, config: RollupScope, dbt: WarehouseDbtResource,
                             warehouse: Warehouse) -> Iterator[Any]:
        project_dir = rollups_project.project_dir
        target = target_path_with_parse(project_dir, warehouse, context.op_execution_context.op.name, context.run_id)
        since = config.since()
        if since:
            context.log.info("rebuilding the rollups of the contacts changed since %s", since)
        invocation = dbt.cli(["build"], context=context, raise_on_error=False, target_path=target,
                             rollups_changed_since=since)
        # Collected, then yielded: the row counts need the warehouse, which dbt holds until it
        # exits. dbt's own log (dagster-dbt writes it to stdout, a hundred lines a build) becomes
        # one DEBUG entry: each model's and test's result is an event of the run already.
        log = io.StringIO()
        try:
            with contextlib.redirect_stdout(log):
                events = list(invocation.stream())
        finally:
            context.log.debug("dbt build log:\n%s", log.getvalue())
        yield from _with_row_counts(context, events, warehouse)
        error = invocation.get_error()
        if error is not None:
            raise error  # its artefacts (logs, run_results.json) stay in the target path, for a look
        keep_parse(invocation.target_path, project_dir, warehouse)
        shutil.rmtree(invocation.target_path, ignore_errors=True)

    return campaign_rollups_dbt
