"""Alerts: a failed run, a failed blocking check, a failed sensor evaluation and a backfill that
failed before its runs each leave a record on pipeline_alerts and a Slack message (a local webhook
here); a Dynamics connection Entra ID refuses is raised as a reconnect alert; without CRM credentials
a sync fails with one line saying which; Slack being down never loses the record; no secret ever
reaches either."""

from pathlib import Path

import dagster as dg
import pytest

from crm_pipelines.crms.registry import example_config
from crm_pipelines.enginy.database import write_tables
from crm_pipelines.enginy.generator import generate_frames
from crm_pipelines.resources.alerts import AlertDeliveryError, SlackWebhook
from crm_pipelines.crms.dynamics import emulator as sandbox_dynamics
from crm_pipelines.crms.registry import client_environment
from crm_pipelines.sensors.alerts import (
    ALERTS, automation_failure_alert, build_failed_check_alert, build_stuck_run_alert, raise_alert, run_failure_alert,
)
from tests.orchestration.slack import SlackEndpoint
from tests.postgres import dagster_instance_on_postgres

WRONG_SECRET = "not-the-app-secret-4711"


@pytest.fixture
def slack():
    endpoint = SlackEndpoint()
    yield endpoint
    endpoint.close()


def alerts(instance: dg.DagsterInstance) -> list[dict]:
    records = instance.fetch_materializations(ALERTS, limit=100).records
    return [{"title": r.asset_materialization.description,
             **{k: v.value for k, v in r.asset_materialization.metadata.items()}} for r in records]


@pytest.mark.postgres
def test_a_dynamics_connection_entra_id_refuses_raises_a_reconnect_alert(
        sandbox, slack, tmp_path: Path, monkeypatch) -> None:
    sandbox_dynamics.seed(sandbox.ctx, generate_frames(30, seed=3).crm)
    enginy_url = f"sqlite:///{tmp_path / 'enginy.sqlite'}"
    write_tables(enginy_url, generate_frames(30, seed=3).enginy)
    env = {**client_environment("dynamics", sandbox), "DYNAMICS_CLIENT_SECRET": WRONG_SECRET,
           "CRM_PIPELINES_CONFIG": str(example_config("dynamics")), "ENGINY_DATABASE_URL": enginy_url,
           "CRM_PIPELINES_WAREHOUSE_URL": f"duckdb:///{tmp_path / 'wh.duckdb'}"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    from crm_pipelines.definitions import defs

    with dagster_instance_on_postgres(tmp_path / "home", monkeypatch) as instance:
        result = defs().resolve_job_def("incremental_sync").execute_in_process(
            instance=instance, raise_on_error=False)
        assert not result.success
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert", dagster_event=result.get_run_failure_event(),
            dagster_instance=instance, dagster_run=result.dagster_run,
            resources={"slack": SlackWebhook(url=slack.url)}).for_run_failure()
        run_failure_alert(context)

        [alert] = alerts(instance)
        assert alert["kind"] == "reconnect_required" and alert["title"] == "Dynamics needs to be reconnected"
        assert "reconnect Dynamics: Entra ID refused the app" in alert["details"]
        assert alert["run"] == result.run_id
        [message] = slack.messages
        assert message["text"].startswith(":rotating_light: *Dynamics needs to be reconnected*")
        for text in (str(alert), message["text"]):
            assert WRONG_SECRET not in text


def test_a_failed_run_alerts_with_the_step_and_its_reason_and_no_secret(slack) -> None:
    @dg.op
    def pull_contacts() -> None:
        raise RuntimeError("Salesforce answered 500 to GET /services/data/v62.0/query; Max retries exceeded with "
                           "url: /v1/persons?api_token=tok-123&limit=5; warehouse postgresql://etl:s3cret@db/wh")

    @dg.job
    def incremental_sync() -> None:
        pull_contacts()

    with dg.instance_for_test() as instance:
        result = incremental_sync.execute_in_process(instance=instance, raise_on_error=False)
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert", dagster_event=result.get_run_failure_event(), dagster_instance=instance,
            dagster_run=result.dagster_run, resources={"slack": SlackWebhook(url=slack.url)}).for_run_failure()
        run_failure_alert(context)
        [alert] = alerts(instance)
    assert alert["kind"] == "run_failed" and alert["title"] == "incremental_sync failed"
    assert "pull_contacts: RuntimeError: Salesforce answered 500" in alert["details"] or \
        "pull_contacts: Salesforce answered 500" in alert["details"]
    assert "incremental_sync failed" in slack.messages[0]["text"]
    for text in (alert["details"], slack.messages[0]["text"]):
        assert "tok-123" not in text and "s3cret" not in text and "/v1/persons?…" in text


def _failed_gate(instance: dg.DagsterInstance, description: str) -> dg.ExecuteInProcessResult:
    """A failing evaluation of the contact batch's blocking gate, as a run of the batch records it."""
    @dg.asset(name="contact_export_batch")
    def batch() -> None:
        return None

    @dg.asset_check(asset=batch, name="export_gates", blocking=True)
    def export_gates() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR, description=description)

    result = dg.materialize([batch, export_gates], instance=instance, raise_on_error=False)
    assert not result.success
    return result


def test_a_failed_blocking_check_alerts_once_with_its_reasons(slack) -> None:
    key = dg.AssetCheckKey(dg.AssetKey("contact_export_batch"), "export_gates")
    sensor = build_failed_check_alert([key])
    resources = {"slack": SlackWebhook(url=slack.url)}
    with dg.instance_for_test() as instance:
        stopped = _failed_gate(instance, "mapping no_such_field: the CRM has no such field")
        with dg.build_sensor_context(instance=instance, resources=resources) as context:
            first = sensor.evaluate_tick(context)
        # The run the check stopped failed too; the check's alert is the one that says why.
        run_failure_alert(dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert", dagster_event=stopped.get_run_failure_event(), dagster_instance=instance,
            dagster_run=stopped.dagster_run, resources=resources).for_run_failure())
        [alert] = alerts(instance)
        assert alert["kind"] == "check_failed"
        assert alert["title"] == "contact_export_batch:export_gates failed: the push was stopped"
        assert "no_such_field" in alert["details"] and "no_such_field" in slack.messages[0]["text"]

        with dg.build_sensor_context(instance=instance, cursor=first.cursor, resources=resources) as context:
            again = sensor.evaluate_tick(context)
        assert len(alerts(instance)) == 1 and len(slack.messages) == 1, "each failure alerts once"

        _failed_gate(instance, "3 of 10 rows rejected (30.0%; the limit is 5%)")
        with dg.build_sensor_context(instance=instance, cursor=again.cursor, resources=resources) as context:
            sensor.evaluate_tick(context)
        assert len(alerts(instance)) == 2 and "rows rejected" in slack.messages[-1]["text"]


def test_slack_errors_are_retried_and_an_outage_never_loses_the_alert() -> None:
    flaky = SlackEndpoint(failures=2, status=503)
    try:
        assert SlackWebhook(url=flaky.url).post("hello") is True
        assert flaky.calls == 3 and flaky.messages == [{"text": "hello"}]
    finally:
        flaky.close()

    down = SlackEndpoint()
    url = down.url
    down.close()
    with pytest.raises(AlertDeliveryError) as refused:
        SlackWebhook(url=url, attempts=2).post("hello")
    assert "secret-token" not in str(refused.value), "the webhook URL is a secret"

    with dg.instance_for_test() as instance:
        with dg.build_sensor_context(instance=instance) as context:
            raise_alert(context, SlackWebhook(url=url, attempts=1), "run_failed", "export_push failed", "- why", None)
        assert [a["title"] for a in alerts(instance)] == ["export_push failed"]
    assert SlackWebhook().post("nobody listens") is False, "no webhook configured: nothing is sent"


def _failed_tick(instance: dg.DagsterInstance, sensor: str, exc: BaseException) -> None:
    """Record a failed evaluation of ``sensor`` on the instance, as the sensor daemon does."""
    import sys
    import time

    from dagster._core.remote_origin import InProcessCodeLocationOrigin, RemoteInstigatorOrigin, RemoteRepositoryOrigin
    from dagster._core.scheduler.instigation import (
        InstigatorState, InstigatorStatus, InstigatorType, SensorInstigatorData, TickData, TickStatus,
    )
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._utils.error import serializable_error_info_from_exc_info

    repository = RemoteRepositoryOrigin(
        InProcessCodeLocationOrigin(LoadableTargetOrigin(module_name="crm_pipelines.definitions")), "__repository__")
    state = InstigatorState(RemoteInstigatorOrigin(repository, sensor), InstigatorType.SENSOR,
                            InstigatorStatus.RUNNING, SensorInstigatorData())
    instance.add_instigator_state(state)
    try:
        raise exc
    except BaseException:
        error = serializable_error_info_from_exc_info(sys.exc_info())
    instance.create_tick(TickData(
        instigator_origin_id=state.instigator_origin_id, instigator_name=sensor, instigator_type=InstigatorType.SENSOR,
        status=TickStatus.FAILURE, timestamp=time.time(), selector_id=state.selector_id, error=error))


def test_without_crm_credentials_a_sync_and_a_sensor_tick_fail_with_one_line_and_the_tick_alerts(
        slack, tmp_path: Path, monkeypatch) -> None:
    for variable in ("SALESFORCE_LOGIN_URL", "SALESFORCE_CLIENT_ID", "SALESFORCE_CLIENT_SECRET"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("CRM_PIPELINES_CONFIG", str(example_config("salesforce")))
    monkeypatch.setenv("CRM_PIPELINES_WAREHOUSE_URL", f"duckdb:///{tmp_path / 'wh.duckdb'}")
    from crm_pipelines.definitions import defs

    definitions = defs()  # the code location loads: what needs the CRM fails when it runs
    with dg.instance_for_test() as instance:
        result = definitions.resolve_job_def("incremental_sync").execute_in_process(
            instance=instance, raise_on_error=False)
        [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
        line = failure.event_specific_data.user_failure_data.description
        assert line.startswith("Salesforce is not connected: SALESFORCE_") and "\n" not in line
        assert "crm-pipelines ui" in line

        repository = definitions.get_repository_def()
        with dg.build_sensor_context(instance=instance, repository_def=repository,
                                     resources=repository.get_top_level_resources()) as context:
            with pytest.raises(dg.Failure, match="Salesforce is not connected") as raised:
                repository.get_sensor_def("crm_change_sensor").evaluate_tick(context)
        _failed_tick(instance, "crm_change_sensor", raised.value)
        with dg.build_sensor_context(instance=instance, resources={"slack": SlackWebhook(url=slack.url)}) as context:
            automation_failure_alert(context)
        [alert] = alerts(instance)
        assert alert["kind"] == "automation_failed" and alert["title"] == "sensor crm_change_sensor failed"
        assert "Salesforce is not connected: SALESFORCE_" in alert["details"]
        assert len(slack.messages) == 1


def test_a_backfill_that_fails_before_starting_its_runs_alerts_once(slack) -> None:
    import time

    from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
    from dagster._utils.error import SerializableErrorInfo

    with dg.instance_for_test() as instance:
        instance.add_backfill(PartitionBackfill(
            "bkfl0001", BulkActionStatus.FAILED, from_failure=False, tags={}, backfill_timestamp=time.time(),
            title="re-pull last week", error=SerializableErrorInfo(
                "Salesforce is not connected: SALESFORCE_CLIENT_ID not set", [], "CrmNotConnected")))
        resources = {"slack": SlackWebhook(url=slack.url)}
        with dg.build_sensor_context(instance=instance, resources=resources) as context:
            automation_failure_alert(context)
            cursor = context.cursor
        [alert] = alerts(instance)
        assert alert["title"] == "backfill re-pull last week failed"
        assert "SALESFORCE_CLIENT_ID not set" in alert["details"]
        with dg.build_sensor_context(instance=instance, resources=resources, cursor=cursor) as context:
            automation_failure_alert(context)
        assert len(alerts(instance)) == 1 and len(slack.messages) == 1, "alerted once"


def test_a_run_that_logs_nothing_for_too_long_is_alerted_as_stuck_once(slack) -> None:
    import time

    with dg.instance_for_test() as instance:
        run = dg.DagsterRun(job_name="export_push", status=dg.DagsterRunStatus.STARTED)
        instance.add_run(run)
        instance.report_engine_event("crm_push_results: chunk 3 of 40 sent", run)
        done = dg.DagsterRun(job_name="incremental_sync", status=dg.DagsterRunStatus.SUCCESS)
        instance.add_run(done)
        instance.report_engine_event("finished", done)
        resources = {"slack": SlackWebhook(url=slack.url)}
        with dg.build_sensor_context(instance=instance, resources=resources) as context:
            build_stuck_run_alert(60)(context)  # quiet for under an hour: at work
        assert alerts(instance) == []
        time.sleep(0.3)
        with dg.build_sensor_context(instance=instance, resources=resources) as context:
            build_stuck_run_alert(0.3 / 60)(context)
            cursor = context.cursor
        [alert] = alerts(instance)
        assert alert["kind"] == "run_stuck" and alert["title"].startswith("export_push is stuck")
        assert alert["run"] == run.run_id and len(slack.messages) == 1
        with dg.build_sensor_context(instance=instance, resources=resources, cursor=cursor) as context:
            build_stuck_run_alert(0.3 / 60)(context)
        assert len(alerts(instance)) == 1, "alerted once"
