"""The one Definitions object of the crm_pipelines code location: it only assembles."""

import os

import dagster as dg

from crm_pipelines.assets.crm import build_crm_assets, crm_associations, crm_schema, crm_users
from crm_pipelines.assets.dbt import build_rollup_assets, rollups_project
from crm_pipelines.assets.enginy import enginy_assets
from crm_pipelines.assets.export import build_export_assets, undo_associations
from crm_pipelines.assets.matching import matching_assets
from crm_pipelines.config import CONFIG_ENV_VAR, load_config
from crm_pipelines.resources.connections import crm_resource
from crm_pipelines.resources.dbt import warehouse_dbt
from crm_pipelines.resources.enginy import ENGINY_URL_ENV, EnginyDatabase
from crm_pipelines.resources.integration import IntegrationSettings
from crm_pipelines.resources.warehouse import (
    WAREHOUSE_SCHEMA_ENV, WAREHOUSE_URL_ENV, Warehouse, WarehouseIOManager,
)

MATERIALIZE_ALL = "materialize_all"
BACKFILL_START_ENV = "CRM_PIPELINES_BACKFILL_START"
DEFAULT_BACKFILL_START = "2024-01-01"


def _from_env(name: str) -> dg.EnvVar | None:
    """Bind a resource field to an environment variable only when it is set, so the embedded
    defaults apply on a fresh machine and the value (it may hold a password) stays out of the UI."""
    return dg.EnvVar(name) if os.environ.get(name) else None


def _given(**fields: dg.EnvVar | None) -> dict[str, dg.EnvVar]:
    return {k: v for k, v in fields.items() if v is not None}


def build_resources() -> dict[str, object]:
    warehouse = Warehouse(**_given(url=_from_env(WAREHOUSE_URL_ENV), schema_name=_from_env(WAREHOUSE_SCHEMA_ENV)))
    return {
        "warehouse": warehouse,
        "warehouse_io_manager": WarehouseIOManager(warehouse=warehouse),
        "dbt": warehouse_dbt(rollups_project, warehouse),
        "enginy": EnginyDatabase(**_given(url=_from_env(ENGINY_URL_ENV))),
        "integration": IntegrationSettings(**_given(config_path=_from_env(CONFIG_ENV_VAR))),
    }


@dg.definitions
def defs() -> dg.Definitions:
    # A broken integration config stops the code location from loading, with the file, the
    # path inside it and the fix, instead of failing later inside a run.
    config = load_config(os.environ.get(CONFIG_ENV_VAR) or None)
    assets = [
        *enginy_assets,
        *build_crm_assets(os.environ.get(BACKFILL_START_ENV) or DEFAULT_BACKFILL_START),
        crm_users, crm_associations, crm_schema,
        *matching_assets,
        build_rollup_assets(),
        *build_export_assets(with_rollups=True, with_leads=config.active_crm == "salesforce"),
    ]
    return dg.Definitions(
        assets=assets,
        jobs=[dg.define_asset_job(MATERIALIZE_ALL, selection=dg.AssetSelection.all(),
                                  description="Every asset of the pipeline, in dependency order."),
              undo_associations],
        resources={**build_resources(), "crm": crm_resource(config.active_crm, config.crm.settings.environment)},
    )
