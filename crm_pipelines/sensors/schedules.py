"""The nightly reconciliation: everything pulled again, matched again, and what a push would do."""

from datetime import UTC, datetime

import dagster as dg

from crm_pipelines.jobs import NIGHTLY_RECONCILIATION, SNAPSHOTS_STEP


def build_nightly_reconciliation(job, cron: str, timezone: str) -> dg.ScheduleDefinition:
    @dg.schedule(name="nightly_reconciliation_schedule", job=job, cron_schedule=cron, execution_timezone=timezone,
                 default_status=dg.DefaultScheduleStatus.STOPPED,
                 description=f"Runs {NIGHTLY_RECONCILIATION} at '{cron}' ({timezone}): a full pull of every CRM "
                             "object (records deleted or edited without moving their timestamp are caught "
                             "here), matching, the match-quality report and an export dry run attached to "
                             "the run as export_dry_run. Nothing is pushed.")
    def nightly_reconciliation_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        when = context.scheduled_execution_time or datetime.now(UTC)  # None when launched by hand
        full = {"ops": {SNAPSHOTS_STEP: {"config": {"full_refresh": True}}}}
        return dg.RunRequest(run_key=f"nightly:{when.astimezone(UTC):%Y-%m-%d}", run_config=full)

    return nightly_reconciliation_schedule
