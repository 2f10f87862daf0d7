"""The nightly reconciliation: everything pulled again, matched again, and what a push would do."""

from datetime import UTC, datetime

import dagster as dg

from crm_pipelines.jobs import NIGHTLY_RECONCILIATION, SNAPSHOTS


def build_nightly_reconciliation(job, cron: str, timezone: str,
                                 partitions_def: dg.TimeWindowPartitionsDefinition) -> dg.ScheduleDefinition:
    @dg.schedule(name="nightly_reconciliation_schedule", job=job, cron_schedule=cron, execution_timezone=timezone,
                 default_status=dg.DefaultScheduleStatus.STOPPED,
                 description=f"Runs {NIGHTLY_RECONCILIATION} at '{cron}' ({timezone}): a full pull of every CRM "
                             "object (records deleted or edited without moving their timestamp are caught "
                             "here), matching, the match-quality report and an export dry run attached to "
                             "the run as export_dry_run. Nothing is pushed.")
    def nightly_reconciliation_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        # The partition of the day the run starts in: the incremental one, which reaches up to now.
        when = context.scheduled_execution_time or datetime.now(UTC)  # None when launched by hand
        day = partitions_def.get_partition_key_for_timestamp(when.timestamp())
        full = {"ops": {name: {"config": {"full_refresh": True}} for name in SNAPSHOTS.values()}}
        return dg.RunRequest(run_key=f"nightly:{day}", partition_key=day, run_config=full)

    return nightly_reconciliation_schedule
