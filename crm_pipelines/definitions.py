"""The one Definitions object of the crm_pipelines code location: it only assembles."""

import gc
import os

import dagster as dg

from crm_pipelines.assets.activities import crm_activity_push
from crm_pipelines.assets.crm import crm_associations, crm_schema, crm_snapshots, crm_users
from crm_pipelines.assets.dbt import build_rollup_assets, rollups_project
from crm_pipelines.assets.enginy import enginy_assets
from crm_pipelines.assets.export import build_export_assets, undo_associations
from crm_pipelines.assets.matching import matching_assets
from crm_pipelines.config import CONFIG_ENV_VAR, DEFAULT_CONFIG, ConfigError, load_config
from crm_pipelines.jobs import ENGINY_SYNC, ENGINY_SYNC_AND_PUSH, EXPORT_RUN_TAGS, build_jobs
from crm_pipelines.resources.alerts import SLACK_WEBHOOK_ENV, SlackWebhook
from crm_pipelines.crms import registry
from crm_pipelines.crms.registry import crm_resource
from crm_pipelines.resources.dbt import warehouse_dbt
from crm_pipelines.resources.enginy import ENGINY_URL_ENV, EnginyDatabase
from crm_pipelines.resources.integration import IntegrationSettings
from crm_pipelines.resources.warehouse import (
    WAREHOUSE_SCHEMA_ENV, WAREHOUSE_URL_ENV, Warehouse, WarehouseIOManager,
)
from crm_pipelines.sensors.alerts import (
    automation_failure_alert, build_failed_check_alert, build_stuck_run_alert, pipeline_alerts, run_failure_alert,
)
from crm_pipelines.sensors.changes import build_crm_change_sensor, build_enginy_change_sensor
from crm_pipelines.sensors.schedules import build_nightly_reconciliation

# A step of a big sync builds millions of short-lived objects (writes, the CRM's answers, ledger
# rows) beside heaps of millions more. At CPython's default thresholds (a young collection every
# 700 new objects, its survivors promoted toward full collections over the whole heap), building
# a million writes and their results in a process holding three million other objects took 6.5 s,
# 2.4 s at these thresholds and 2.3 s with no collection at all. Every process that loads the code
# location runs its steps, so it is set here.
gc.set_threshold(50_000, 20, 100)

MATERIALIZE_ALL = "materialize_all"


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
        "slack": SlackWebhook(**_given(url=_from_env(SLACK_WEBHOOK_ENV))),
    }


# Steps run in processes of their own, forked from a server that has imported the code location
# once, instead of each importing dagster, dbt and pandas again (about a second of every step of
# every run the UI, a schedule, a sensor or the CLI launches). A small run says
# `execution: {config: {in_process: {}}}` and runs every step in its own process instead: the
# Enginy change sensor does for a run scoped to the records changed since its last one, where a
# process per step (a forkserver importing the code location again, each gate importing
# great-expectations) cost two minutes for one contact.
STEP_PROCESSES = dg.ExecutorDefinition(
    name="forked_steps_or_in_process",
    config_schema=dg.Field(dg.multi_or_in_process_executor.config_schema.config_type,
                           default_value={"multiprocess": {"start_method": {"forkserver": {}}}}),
    executor_creation_fn=dg.multi_or_in_process_executor.executor_creation_fn,
    requirements=dg.multi_or_in_process_executor.get_requirements,
    description="Each step in a process forked from one that imported the code location (multiprocess, "
                "forkserver), or every step in the run's process (in_process), for small runs.")


def _nightly(job, config, config_path: str | None) -> dg.ScheduleDefinition:
    cron = config.automation.nightly_reconciliation
    try:
        return build_nightly_reconciliation(job, cron, config.automation.timezone)
    except dg.DagsterInvalidDefinitionError:
        raise ConfigError(config_path or DEFAULT_CONFIG, [
            f"automation.nightly_reconciliation: {cron!r} is not a cron schedule — fix: give five fields "
            "(minute hour day-of-month month day-of-week), e.g. '0 2 * * *' for 02:00 every day"]) from None


@dg.definitions
def defs() -> dg.Definitions:
    # A broken integration config stops the code location from loading, with the file, the
    # path inside it and the fix, instead of failing later inside a run.
    config_path = os.environ.get(CONFIG_ENV_VAR) or None
    config = load_config(config_path)
    export = build_export_assets(with_rollups=True, with_leads=registry.facts(config.active_crm).has_leads)
    assets = [
        *enginy_assets, crm_snapshots, crm_users, crm_associations, crm_schema, *matching_assets,
        build_rollup_assets(), *export, crm_activity_push, pipeline_alerts,
    ]
    names = {key.path[-1] for a in assets if isinstance(a, dg.AssetsDefinition) for key in a.keys}
    batches = sorted(name for name in names if name.endswith("_export_batch"))
    gates = [key for a in export if isinstance(a, dg.AssetsDefinition) for key in a.check_keys]
    jobs = {job.name: job for job in build_jobs(batches, names)}
    interval = max(1, round(config.automation.sync_interval_minutes * 60))
    return dg.Definitions(
        assets=assets,
        jobs=[dg.define_asset_job(MATERIALIZE_ALL, selection=dg.AssetSelection.all(), tags=EXPORT_RUN_TAGS,
                                  description="Every asset of the pipeline, in dependency order."),
              *jobs.values(), undo_associations],
        schedules=[_nightly(jobs["nightly_reconciliation"], config, config_path)],
        sensors=[build_crm_change_sensor(interval, ("companies", "contacts", "leads")),
                 build_enginy_change_sensor(interval, batches, [jobs[ENGINY_SYNC], jobs[ENGINY_SYNC_AND_PUSH]]),
                 run_failure_alert, build_failed_check_alert(gates), automation_failure_alert,
                 build_stuck_run_alert(config.automation.stuck_run_minutes)],
        resources={**build_resources(), "crm": crm_resource(config.active_crm, config.crm.settings.environment)},
        executor=STEP_PROCESSES,
    )
