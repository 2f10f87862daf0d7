"""The sensors that make the pipeline run by itself: one watches the CRM, one watches Enginy.

Both ask a cheap question each tick (a one-row query on the CRM's modification timestamp, an
aggregate on Enginy's updated_at) and request work only when the answer moved. Each cursor
holds the newest change a requested run covers: the run reads up to the moment it runs, which
is after the tick, so anything newer than the cursor is either in that run or seen next tick.
While a run they requested is still going, they wait: the cursor stays, nothing is skipped.
"""

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg

from crm_pipelines.jobs import (
    ASSOCIATIONS, ENGINY_SYNC, ENGINY_SYNC_AND_PUSH, INCREMENTAL_SYNC, MATCH_ASSETS, ROLLUPS_STEP, SNAPSHOTS,
)
from crm_pipelines.assets.enginy import EVENT_LOOKBACK_DAYS
from crm_pipelines.crms.base import CrmResource
from crm_pipelines.resources.enginy import EnginyDatabase
from crm_pipelines.resources.integration import IntegrationSettings

UNFINISHED = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
              dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
ENGINY_TABLES = ("companies", "contacts")
# A run scoped by the Enginy sensor copies from this long before its cursor: a row committed late,
# with an updated_at the cursor has already passed, is copied too (and the sensor sees it arrive).
ENGINY_OVERLAP = timedelta(minutes=5)


def _unfinished(instance: dg.DagsterInstance, jobs: list[str]) -> tuple[dg.DagsterRun | None, list[dg.DagsterRun]]:
    """The run of ``jobs`` still under way, if any, and the runs found dead. A run whose worker
    process is gone (killed for memory, a restart) is reported failed here rather than waited for
    forever: its failure raises run_failure_alert's alert, and the sensor requests its work again."""
    dead = []
    for job in jobs:
        for run in instance.get_runs(dg.RunsFilter(job_name=job, statuses=UNFINISHED)):
            gone = _dead_worker(instance, run)
            if gone is None:
                return run, dead
            instance.report_run_failed(run, message=f"its run worker (pid {gone}) is gone: killed (out of memory, "
                                                    "a restart) before it finished; its work is requested again")
            dead.append(run)
    return None, dead


def _again(run: dg.DagsterRun) -> dg.RunRequest:
    """A run of the same work as ``run``, whose worker died: the sensor's cursor had moved past it."""
    return dg.RunRequest(run_key=f"again:{run.run_id}", job_name=run.job_name, run_config=run.run_config,
                         asset_selection=list(run.asset_selection) if run.asset_selection else None,
                         tags={k: v for k, v in run.tags.items() if k.startswith("crm_pipelines/")}
                         | {"crm_pipelines/again_after": run.run_id})


def _dead_worker(instance: dg.DagsterInstance, run: dg.DagsterRun) -> int | None:
    """The pid of ``run``'s worker when it was started on this machine by Dagster's default run
    launcher (or in-process by the CLI) and no longer runs; None when it runs or cannot be told.
    Dagster's own run monitoring cannot ask that launcher whether a worker is alive."""
    from dagster._core.launcher import DefaultRunLauncher

    if run.status != dg.DagsterRunStatus.STARTED or not isinstance(instance.run_launcher, DefaultRunLauncher):
        return None
    for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        data = entry.dagster_event.engine_event_data if entry.dagster_event else None
        pid = data.metadata.get("pid") if data is not None else None
        if pid is None:
            continue
        pid = int(pid.value)
        return pid if not _running(pid) else None
    return None


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # no signal sent: only whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A killed worker its parent has not reaped yet is a zombie: gone, though its pid still exists.
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _duration(seconds: int) -> str:
    count, unit = (seconds // 60, "minute") if seconds % 60 == 0 else (seconds, "second")
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def _stamp(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _enginy_cursor(cursor: str | None) -> tuple[datetime | None, int]:
    """(the newest update a requested run covers, the rows then in the overlap before it); a cursor
    of an earlier version is that time alone."""
    if not cursor:
        return None, 0
    if not cursor.startswith("{"):
        return _stamp(cursor), 0
    state = json.loads(cursor)
    return _stamp(state["covered"]), int(state["overlap_rows"])


def _rows_in_overlap(enginy: EnginyDatabase, covered: datetime) -> int:
    return sum(enginy.changes_since(table, covered - ENGINY_OVERLAP, covered)[0] for table in ENGINY_TABLES)


def build_crm_change_sensor(interval_seconds: int, objects: tuple[str, ...]) -> dg.SensorDefinition:
    @dg.sensor(name="crm_change_sensor", job_name=INCREMENTAL_SYNC, minimum_interval_seconds=interval_seconds,
               default_status=dg.DefaultSensorStatus.STOPPED,
               description=f"Every {_duration(interval_seconds)}, asks the CRM whether any "
                           f"{', '.join(objects)} changed since the last sync (one row per object, newest first) "
                           "and, only then, requests incremental_sync for the objects that changed.")
    def crm_change_sensor(context: dg.SensorEvaluationContext, crm: CrmResource):
        running, dead = _unfinished(context.instance, [INCREMENTAL_SYNC])
        if dead:
            return _again(dead[0])
        if running is not None:
            return dg.SkipReason(f"incremental_sync run {running.run_id} is not finished; "
                                 "changes are checked again after it")
        cursor = json.loads(context.cursor) if context.cursor else {}
        client = crm.client()
        changed = {obj: latest for obj in objects
                   if (latest := client.latest_change(obj, _stamp(cursor.get(obj)))) is not None}
        if not changed:
            return dg.SkipReason(f"nothing changed in {client.crm} since the last sync")
        covered = {obj: latest.isoformat() for obj, latest in changed.items()}
        context.update_cursor(json.dumps({**cursor, **covered}, sort_keys=True))
        return dg.RunRequest(
            run_key=f"crm:{json.dumps(covered, sort_keys=True)}",
            # The three snapshots are one step: an object that did not change costs one empty page.
            asset_selection=[dg.AssetKey(name) for name in SNAPSHOTS.values()]
            + ([dg.AssetKey(ASSOCIATIONS)] if "contacts" in changed else []),
            tags={"crm_pipelines/changed_objects": ",".join(sorted(changed)),
                  "crm_pipelines/newest_change": max(covered.values())})

    return crm_change_sensor


def scope_config(since: str, scoped_assets: list[str]) -> dict:
    """Run config that limits the Enginy copies, matching, the campaign rollups and the batches to
    Enginy records updated after ``since``, and the campaign events copy to the last few days of events.
    Such a run is small: its steps run in the run's own process, not a process each."""
    return {"ops": {**{name: {"config": {"only_changed_since": since}} for name in scoped_assets},
                    "enginy_campaign_events": {"config": {"lookback_days": EVENT_LOOKBACK_DAYS}}},
            "execution": {"config": {"in_process": {}}}}


def build_enginy_change_sensor(interval_seconds: int, batches: list[str],
                               jobs: list) -> dg.SensorDefinition:
    """``jobs``: enginy_sync and enginy_sync_and_push, the two it may request."""
    scoped = [*(f"enginy_{table}" for table in ENGINY_TABLES), *MATCH_ASSETS, ROLLUPS_STEP, *batches]

    @dg.sensor(name="enginy_change_sensor", jobs=jobs, minimum_interval_seconds=interval_seconds,
               default_status=dg.DefaultSensorStatus.STOPPED, description=(
                   f"Every {_duration(interval_seconds)}, asks Enginy for contacts and companies updated since "
                   "the last run and, only then, requests matching and export batches for just those records "
                   "(enginy_sync); with "
                   "automation.automatic_export in the integration config the push follows "
                   "(enginy_sync_and_push), otherwise the batches wait for a person to launch export_push."))
    def enginy_change_sensor(context: dg.SensorEvaluationContext, enginy: EnginyDatabase,
                             integration: IntegrationSettings):
        running, dead = _unfinished(context.instance, [ENGINY_SYNC, ENGINY_SYNC_AND_PUSH])
        if dead:
            return _again(dead[0])
        if running is not None:
            return dg.SkipReason(f"{running.job_name} run {running.run_id} is not finished; "
                                 "changes are checked again after it")
        covered, overlap_rows = _enginy_cursor(context.cursor)
        # Up to now, never past it: one row stamped in the future (a wrong clock, a bad import)
        # would otherwise move the cursor there and hide every change until that date.
        now = datetime.now(timezone.utc)
        counts = {table: enginy.changes_since(table, covered, now) for table in ENGINY_TABLES}
        newest = [latest for _, latest in counts.values() if latest is not None]
        # Rows committed late with an updated_at already behind the cursor: the overlap before it
        # holds more rows than when the cursor was set.
        in_overlap = _rows_in_overlap(enginy, covered) if covered else 0
        late = in_overlap - overlap_rows if covered else 0
        if not newest and late <= 0:
            return dg.SkipReason("no Enginy contact or company updated since the last run")
        reached = max(newest) if newest else covered
        since = (covered - ENGINY_OVERLAP).isoformat() if covered else ""
        automatic = integration.load().automation.automatic_export
        context.update_cursor(json.dumps({"covered": reached.isoformat(),
                                          "overlap_rows": in_overlap if reached == covered
                                          else _rows_in_overlap(enginy, reached)}))
        changes = ", ".join(f"{n} {t}" for t, (n, _) in counts.items())
        changes += f", {late} committed late" if late > 0 else ""
        return dg.RunRequest(
            run_key=f"enginy:{reached.isoformat()}:{late}", job_name=ENGINY_SYNC_AND_PUSH if automatic else ENGINY_SYNC,
            # No cursor yet: the first run matches and batches every record.
            run_config=scope_config(since, scoped) if since else {},
            tags={"crm_pipelines/enginy_changes": changes, "crm_pipelines/changed_since": since or "everything"})

    return enginy_change_sensor
