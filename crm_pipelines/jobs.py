"""The jobs a user launches from the UI, a schedule or a sensor, named for what they do."""

import dagster as dg

from crm_pipelines.export.associations import REMOVED_ASSOCIATIONS
from crm_pipelines.export.ledger import ACTIVITY_LEDGER, EXPORT_LEDGER

INCREMENTAL_SYNC = "incremental_sync"
FULL_BACKFILL = "full_backfill"
ENGINY_SYNC = "enginy_sync"
EXPORT_PUSH = "export_push"
ENGINY_SYNC_AND_PUSH = "enginy_sync_and_push"
NIGHTLY_RECONCILIATION = "nightly_reconciliation"

# The snapshot each CRM object lands in, all three from one step; crm_associations is rebuilt from the contacts.
SNAPSHOTS = {"companies": "crm_companies", "contacts": "crm_contacts", "leads": "crm_leads"}
SNAPSHOTS_STEP = "crm_snapshots"
ASSOCIATIONS = "crm_associations"
MATCH_ASSETS = ("company_matches", "contact_matches")
# The step that builds the dbt models (the campaign rollups).
ROLLUPS_STEP = "campaign_rollups_dbt"
# What a push writes (the ledgers are materialized by the push steps themselves).
PUSH_ASSETS = ("crm_push_results", EXPORT_LEDGER, REMOVED_ASSOCIATIONS, "export_rejections", "enginy_writeback",
               "crm_activity_push", ACTIVITY_LEDGER)


# The runs that build the export batches or push them carry this tag, and the shipped instance
# configs let one such run in progress at a time (concurrency.runs.tag_concurrency_limits): a push
# sends the batches its own run built and gated, which a sync running beside it would rebuild.
EXPORT_RUNS_TAG = "crm_pipelines/export_batches"
EXPORT_RUN_TAGS = {EXPORT_RUNS_TAG: "build_or_push"}


def build_jobs(batches: list[str], asset_names: set[str]) -> list:
    """The asset jobs (``dg.define_asset_job``). ``batches``: the export batch assets there are;
    ``asset_names``: every asset defined."""
    crm = dg.AssetSelection.groups("crm")
    snapshots = dg.AssetSelection.assets(*SNAPSHOTS.values(), ASSOCIATIONS)
    batch_selection = dg.AssetSelection.assets(*batches)
    preparation = batch_selection.upstream() - crm
    push = dg.AssetSelection.assets(*batches, *[a for a in PUSH_ASSETS if a in asset_names])
    reconciliation = dg.AssetSelection.all() - dg.AssetSelection.assets(*[a for a in PUSH_ASSETS if a in asset_names])
    return [
        # The sensor's job runs every few minutes on what changed: its steps run in the run's own
        # process, as a step process of its own costs seconds of loading the code location, more
        # than pulling a few changed records (about 20 of the 35 s of a sync under `dagster dev`).
        dg.define_asset_job(
            INCREMENTAL_SYNC, selection=snapshots, executor_def=dg.in_process_executor,
            description="Pull what changed in the CRM since the last sync (from its cursor less five minutes) "
                        "into the snapshots. The CRM change sensor requests it when an object changed."),
        dg.define_asset_job(
            FULL_BACKFILL, selection=crm,
            description="Every CRM asset. In the launchpad, ops.crm_snapshots.config.backfill_from (and "
                        "backfill_to) re-pulls the records modified on those days; full_refresh: true pulls "
                        "the whole CRM again; neither: an incremental sync."),
        dg.define_asset_job(
            ENGINY_SYNC, selection=preparation, tags=EXPORT_RUN_TAGS,
            description="Enginy's records, matching, campaign rollups and the gated export batches — no push: "
                        "the batches wait for a person to launch export_push. The Enginy change sensor "
                        "requests it for the records changed since its last run."),
        dg.define_asset_job(
            EXPORT_PUSH, selection=push, tags=EXPORT_RUN_TAGS,
            description="Build the export batches with the launch's choices (manual export fields, owner, "
                        "association type, sync mode: run config of each *_export_batch), gate them, push "
                        "them, then log campaign activities."),
        dg.define_asset_job(
            ENGINY_SYNC_AND_PUSH, selection=preparation | push, tags=EXPORT_RUN_TAGS,
            description="enginy_sync followed by the push, for integrations with automatic export."),
        dg.define_asset_job(
            NIGHTLY_RECONCILIATION, selection=reconciliation, tags=EXPORT_RUN_TAGS,
            description="Full snapshot refresh, matching, the match-quality report and an export dry run "
                        "(export_dry_run holds the diff); nothing is pushed."),
    ]
