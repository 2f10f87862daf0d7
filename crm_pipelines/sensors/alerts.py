"""Alerts: a failed run or a failed blocking check becomes a record on the pipeline_alerts asset
(its history in the UI is the alert log) and, when SLACK_WEBHOOK_URL is set, a Slack message.

A Dynamics connection Entra ID no longer accepts fails with "reconnect Dynamics:" (see
crm_pipelines/crms/dynamics/client.py); that failure is raised as its own kind of alert, because
the fix is a person reconnecting the app, not a re-run.
"""

import json
import re
import time
from datetime import UTC, datetime

import dagster as dg

from crm_pipelines.resources.alerts import AlertDeliveryError, SlackWebhook

ALERTS = dg.AssetKey("pipeline_alerts")
RECONNECT_MARKER = "reconnect Dynamics:"

pipeline_alerts = dg.AssetSpec(
    ALERTS, group_name="alerts", kinds={"slack"},
    description="The alert log: one entry per failed run, failed blocking check or CRM connection to "
                "renew, with what failed and where to look. Also posted to Slack when SLACK_WEBHOOK_URL is set.")


# An error's text may quote the URL it failed on: an API key in its query string, a password
# in its authority. Neither may reach the alert log or Slack.
_QUERY = re.compile(r"\?[^\s'\"<>]*=[^\s'\"<>]*")
_USERINFO = re.compile(r"://[^/\s:@'\"]+:[^/\s@'\"]+@")


def redact(text: str) -> str:
    return _USERINFO.sub("://***@", _QUERY.sub("?…", text))


def raise_alert(context, slack: SlackWebhook, kind: str, title: str, details: str, run_id: str | None) -> None:
    """Record the alert on pipeline_alerts, then tell Slack; a Slack outage never loses the record."""
    title, details = redact(title), redact(details)
    metadata: dict[str, dg.RawMetadataValue] = {"kind": kind, "details": dg.MetadataValue.md(details)}
    if run_id:
        metadata["run"] = dg.MetadataValue.dagster_run(run_id)
    context.instance.report_runless_asset_event(dg.AssetMaterialization(ALERTS, description=title, metadata=metadata))
    try:
        if slack.post(f":rotating_light: *{title}*\n{details}"):
            context.log.info("alert posted to Slack: %s", title)
    except AlertDeliveryError as exc:
        context.log.warning("alert recorded, but not posted to Slack: %s", exc)


CHECK_FAILED = "DagsterAssetCheckFailedError"


def _step_errors(context: dg.RunFailureSensorContext) -> list[str]:
    """Why each step failed; a blocking check that stopped the run is failed_check_alert's to tell."""
    errors = []
    for event in context.get_step_failure_events():
        error = event.step_failure_data.error
        if error is not None and error.cls_name == CHECK_FAILED:
            continue
        errors.append(f"{event.step_key}: {_innermost(error) if error else (event.message or '').strip()}")
    return errors


@dg.run_failure_sensor(name="run_failure_alert", default_status=dg.DefaultSensorStatus.RUNNING,
                       description="Raises an alert for every failed run: the job, the steps that failed and "
                                   "why; a Dynamics connection to renew is raised as reconnect_required.")
def run_failure_alert(context: dg.RunFailureSensorContext, slack: SlackWebhook) -> None:
    run = context.dagster_run
    errors = _step_errors(context)
    if not errors and context.get_step_failure_events():
        context.log.info("run %s stopped at a blocking check; failed_check_alert reports it", run.run_id)
        return
    errors = errors or [context.failure_event.message or "the run failed"]
    reconnect = [e for e in errors if RECONNECT_MARKER in e]
    if reconnect:
        kind, title = "reconnect_required", "Dynamics needs to be reconnected"
    else:
        kind, title = "run_failed", f"{run.job_name} failed"
    details = "\n".join(f"- {e[:500]}" for e in (reconnect or errors)) + f"\n\nrun {run.run_id}"
    raise_alert(context, slack, kind, title, details, run.run_id)


def build_failed_check_alert(check_keys: list[dg.AssetCheckKey]) -> dg.SensorDefinition:
    """A sensor over the blocking checks' evaluations: each failure alerts once."""

    @dg.sensor(name="failed_check_alert", minimum_interval_seconds=60,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="Raises an alert when a blocking check fails — an export batch stopped before the "
                           "push — with the check's reasons.")
    def failed_check_alert(context: dg.SensorEvaluationContext, slack: SlackWebhook) -> dg.SkipReason:
        seen = json.loads(context.cursor) if context.cursor else {}
        storage = context.instance.event_log_storage
        raised = 0
        for key in check_keys:
            name = key.to_user_string()
            history = [r for r in storage.get_asset_check_execution_history(key, limit=20)
                       if r.status.value in ("SUCCEEDED", "FAILED")]  # evaluated, not merely planned
            # No cursor yet: only the latest evaluation counts, not the whole history.
            new = [r for r in history if r.id > seen.get(name, 0)] if name in seen else history[:1]
            for record in reversed(new):
                if record.status.value != "FAILED":
                    continue
                evaluation = record.event.asset_check_evaluation if record.event else None
                why = evaluation.description if evaluation is not None and evaluation.description else "failed"
                raise_alert(context, slack, "check_failed", f"{name} failed: the push was stopped",
                            f"- {why}\n\nrun {record.run_id}", record.run_id)
                raised += 1
            if history:
                seen[name] = max(seen.get(name, 0), history[0].id)
        context.update_cursor(json.dumps(seen, sort_keys=True))
        return dg.SkipReason(f"{raised} failed check(s) alerted" if raised else "no blocking check failed")

    return failed_check_alert


def _innermost(error) -> str:
    """The innermost cause's message: the one a person acts on (the CRM's answer, not Dagster's wrapper)."""
    while error is not None and error.cause is not None:
        error = error.cause
    return (error.message if error is not None else "").strip()


@dg.sensor(name="automation_failure_alert", minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Raises an alert when a sensor or schedule evaluation fails (e.g. crm_change_sensor cannot "
                       "reach the CRM) or a backfill fails before it starts its runs: failures no run records, "
                       "which run_failure_alert cannot see.")
def automation_failure_alert(context: dg.SensorEvaluationContext, slack: SlackWebhook) -> dg.SkipReason:
    from dagster._core.execution.backfill import BulkActionsFilter, BulkActionStatus
    from dagster._core.scheduler.instigation import TickStatus

    instance = context.instance
    now = time.time()
    # No cursor yet: the last ten minutes, not every failure the instance ever recorded.
    since = float(context.cursor) if context.cursor else now - 600
    failures = []
    for state in instance.all_instigator_state():
        if state.name == "automation_failure_alert":
            continue
        for tick in instance.get_ticks(state.instigator_origin_id, state.selector_id, after=since,
                                       statuses=[TickStatus.FAILURE]):
            kind = tick.instigator_type.value.lower()
            failures.append((tick.timestamp, f"{kind} {tick.instigator_name} failed",
                             _innermost(tick.error) or "no error recorded"))
    for backfill in instance.get_backfills(filters=BulkActionsFilter(statuses=[BulkActionStatus.FAILED],
                                                                     created_after=datetime.fromtimestamp(since, UTC))):
        failures.append((backfill.backfill_timestamp, f"backfill {backfill.title or backfill.backfill_id} failed",
                         _innermost(backfill.error) or "no error recorded"))
    for _, title, why in sorted(failures):
        raise_alert(context, slack, "automation_failed", title, f"- {why[:500]}", None)
    context.update_cursor(str(now))
    return dg.SkipReason(f"{len(failures)} failed evaluation(s) alerted" if failures else "no evaluation failed")


# Run statuses in which a run is under way and should be logging: its steps log per chunk of work.
UNDER_WAY = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def build_stuck_run_alert(stuck_minutes: float) -> dg.SensorDefinition:
    """A sensor over the runs under way: one that has logged nothing for ``stuck_minutes`` alerts
    once. Run monitoring fails a run stuck starting or cancelling, and the change sensors one whose
    worker died; a worker alive but waiting on nothing (a hung connection, a lock never let go)
    is in neither, and would hold the export runs' queue without anyone knowing."""

    @dg.sensor(name="stuck_run_alert", minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.RUNNING,
               description=f"Raises an alert when a run under way has logged nothing for {stuck_minutes:g} minutes "
                           "(automation.stuck_run_minutes in the integration config): stuck, not failed, so no "
                           "other alert fires, and the runs queued behind it wait.")
    def stuck_run_alert(context: dg.SensorEvaluationContext, slack: SlackWebhook) -> dg.SkipReason:
        alerted = json.loads(context.cursor) if context.cursor else []
        instance, now = context.instance, time.time()
        under_way = instance.get_runs(dg.RunsFilter(statuses=UNDER_WAY), limit=100)
        stuck = []
        for run in under_way:
            [last] = instance.get_records_for_run(run.run_id, limit=1, ascending=False).records or [None]
            quiet = now - last.event_log_entry.timestamp if last is not None else 0.0
            if quiet >= stuck_minutes * 60 and run.run_id not in alerted:
                stuck.append((run, quiet))
        for run, quiet in stuck:
            title = f"{run.job_name} is stuck: nothing logged for {quiet / 60:.0f} min"
            raise_alert(context, slack, "run_stuck", title,
                        f"- the run is {run.status.value.lower()} but has logged nothing since "
                        f"{datetime.fromtimestamp(now - quiet, UTC):%Y-%m-%d %H:%M} UTC; look at its last step, "
                        f"and terminate it if it waits on nothing\n\nrun {run.run_id}", run.run_id)
        # Only the runs still under way are remembered: the cursor stays small.
        still = {r.run_id for r in under_way}
        context.update_cursor(json.dumps(sorted({*alerted, *(r.run_id for r, _ in stuck)} & still)))
        return dg.SkipReason(f"{len(stuck)} stuck run(s) alerted" if stuck else "no run is stuck")

    return stuck_run_alert
