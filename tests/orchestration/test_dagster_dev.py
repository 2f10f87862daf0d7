"""The demo as a user drives it: `crm-pipelines demo --serve` runs the pipeline on embedded
defaults as the README's first command does (and says where to look), then serves the Dagster UI
on the sandbox CRM. Through the UI's GraphQL API: the demo's run is there, the sensors and the
schedule are listed with their descriptions, a 7-day backfill completes, and once
crm_change_sensor is on, a contact changed in the sandbox is synced within one interval.

One demo serves both: the README's command is the same run without --serve."""

import os
import signal
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest
import requests
import yaml

from crm_pipelines.crms.registry import example_config
from crm_pipelines.definitions import MATERIALIZE_ALL
from crm_pipelines.enginy.schema import TABLES
from crm_pipelines.sandbox.server import free_port

REPO = Path(__file__).resolve().parents[2]
INTERVAL_MINUTES = 0.1
LOCATION = "crm_pipelines.definitions"
REPOSITORY = {"repositoryLocationName": LOCATION, "repositoryName": "__repository__"}


class Demo:
    def __init__(self, tmp_path: Path) -> None:
        config = yaml.safe_load((example_config("salesforce")).read_text())
        config["automation"] = {"sync_interval_minutes": INTERVAL_MINUTES}
        (tmp_path / "integration.yaml").write_text(yaml.safe_dump(config))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_PIPELINES_", "DAGSTER_"))}
        env.update({"CRM_PIPELINES_CONFIG": str(tmp_path / "integration.yaml"),
                    "DAGSTER_HOME": str(tmp_path / "dagster_home")})
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/graphql"
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [str(REPO / ".venv" / "bin" / "crm-pipelines"), "demo", "--contacts", "300", "--serve",
             "--ui-port", str(self.port)], cwd=tmp_path, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip())

    def wait_for(self, what, timeout: float, step: float = 2.0, message: str = ""):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "the demo stopped:\n" + "\n".join(self.lines[-40:])
            try:
                found = what()
            except requests.RequestException:
                found = None
            if found:
                return found
            time.sleep(step)
        raise AssertionError(f"timed out: {message}\n" + "\n".join(self.lines[-40:]))

    def graphql(self, query: str, **variables) -> dict:
        answer = requests.post(self.url, json={"query": query, "variables": variables}, timeout=30)
        answer.raise_for_status()
        body = answer.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def runs(self, job: str) -> list[dict]:
        data = self.graphql("""query($job: String) { runsOrError(filter: {pipelineName: $job}) {
            ... on Runs { results { runId status creationTime tags { key value } } } } }""", job=job)
        return data["runsOrError"]["results"]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # the demo stops its UI and saves the sandbox
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@pytest.fixture
def demo(tmp_path: Path):
    running = Demo(tmp_path)
    yield running
    running.stop()


def assert_the_demo_ran_every_asset_and_said_where_to_look(demo: Demo, tmp_path: Path) -> None:
    output = "\n".join(demo.lines)
    assert any("Run " in line and "SUCCESS" in line for line in demo.lines)
    assert "dagster dev -w workspace.yaml" in output
    assert "Sandbox salesforce on https://127.0.0.1:" in output
    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True) as conn:
        assert conn.execute("select count(*) from enginy_contacts").fetchone()[0] == 300
        tables = {r[0] for r in conn.execute("select table_name from information_schema.tables").fetchall()}
    assert {f"enginy_{t.name}" for t in TABLES} <= tables
    assert {"crm_contacts", "crm_companies", "crm_leads", "crm_users", "crm_associations", "crm_schema"} <= tables
    runs = demo.graphql("""{ runsOrError { ... on Runs { results { status pipelineName } } } }""")
    assert runs["runsOrError"]["results"] == [{"status": "SUCCESS", "pipelineName": MATERIALIZE_ALL}]


@pytest.mark.slow
def test_the_demo_runs_every_asset_then_serves_sensors_a_backfill_and_a_change_picked_up_within_one_interval(
        demo: Demo, tmp_path: Path) -> None:
    demo.wait_for(lambda: any("Dagster UI on" in line for line in demo.lines), 600, message="the demo's run")
    demo.wait_for(lambda: demo.graphql("{ version }"), 180, message="the Dagster UI")
    assert_the_demo_ran_every_asset_and_said_where_to_look(demo, tmp_path)

    location = demo.wait_for(lambda: [
        node for node in demo.graphql("""{ repositoriesOrError { ... on RepositoryConnection { nodes {
            location { name } sensors { name description } schedules { name description cronSchedule } } } } }""")
        ["repositoriesOrError"]["nodes"] if node["sensors"]], 120, message="the code location")[0]
    sensors = {s["name"]: s["description"] for s in location["sensors"]}
    assert set(sensors) == {"crm_change_sensor", "enginy_change_sensor", "run_failure_alert", "failed_check_alert"}
    assert all(sensors.values()) and "incremental_sync" in sensors["crm_change_sensor"]
    [schedule] = location["schedules"]
    assert schedule["name"] == "nightly_reconciliation_schedule" and "dry run" in schedule["description"]

    today = datetime.now(timezone.utc).date()
    days = [(today - timedelta(days=n)).isoformat() for n in range(6, -1, -1)]
    launched = demo.graphql("""mutation($params: LaunchBackfillParams!) {
        launchPartitionBackfill(backfillParams: $params) {
            __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }""", params={
        "partitionNames": days, "title": "7-day CRM backfill",
        "assetSelection": [{"path": [name]} for name in ("crm_companies", "crm_contacts", "crm_leads")]})
    backfill = launched["launchPartitionBackfill"]
    assert backfill["__typename"] == "LaunchBackfillSuccess", backfill

    def backfill_done():
        status = demo.graphql("""query($id: String!) { partitionBackfillOrError(backfillId: $id) {
            ... on PartitionBackfill { status } } }""", id=backfill["backfillId"])["partitionBackfillOrError"]["status"]
        return status if status not in ("REQUESTED", "CANCELING", "FAILING") else None

    # The sensor is turned on while the backfill runs, as a user may: its syncs and the
    # backfill's run share the warehouse file, and all complete. (The backfill daemon looks at
    # its backfills every 30 s, so the change below is made and synced while it finishes.)
    started = demo.graphql("""mutation($selector: SensorSelector!) { startSensor(sensorSelector: $selector) {
        __typename ... on Sensor { sensorState { status } } ... on PythonError { message } } }""",
                           selector={**REPOSITORY, "sensorName": "crm_change_sensor"})["startSensor"]
    assert started["__typename"] == "Sensor" and started["sensorState"]["status"] == "RUNNING", started
    # The first tick has no cursor: it syncs once to set it.
    demo.wait_for(lambda: [r for r in demo.runs("incremental_sync") if r["status"] == "SUCCESS"], 300, 5,
                  "the sensor's first sync")
    before = {r["runId"] for r in demo.runs("incremental_sync")}

    demo.process.stdin.write("\n")
    demo.process.stdin.flush()
    changed = demo.wait_for(lambda: next((line for line in demo.lines if "is now 'Changed in the CRM" in line), None),
                            60, 1, "the change in the sandbox")
    changed_at = time.time()
    crm_id = changed.split()[1].rstrip(":")

    def synced():
        return [r for r in demo.runs("incremental_sync") if r["runId"] not in before]

    [run] = demo.wait_for(synced, INTERVAL_MINUTES * 60 * 4 + 60, 2, "a sync of the change")
    assert run["creationTime"] - changed_at <= INTERVAL_MINUTES * 60 + 30, "requested within one interval"
    assert {t["key"]: t["value"] for t in run["tags"]}["crm_pipelines/changed_objects"] == "contacts"
    demo.wait_for(lambda: next(r for r in demo.runs("incremental_sync") if r["runId"] == run["runId"])["status"]
                  in ("SUCCESS", "FAILURE"), 300, 3, "the sync run")
    assert next(r for r in demo.runs("incremental_sync") if r["runId"] == run["runId"])["status"] == "SUCCESS"
    assert demo.wait_for(backfill_done, 600, 5, "the 7-day backfill") in ("COMPLETED", "COMPLETED_SUCCESS")

    demo.stop()
    assert demo.process.returncode == 0, "\n".join(demo.lines[-40:])
    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True) as conn:
        title = conn.execute("SELECT job_title FROM crm_contacts WHERE crm_id = ?", [crm_id]).fetchone()[0]
    assert title == "Changed in the CRM (1)"
