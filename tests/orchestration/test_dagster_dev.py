"""The UI as a newcomer meets it: the README's first command (`crm-pipelines demo`) runs the
pipeline on embedded defaults and says where to look, then its UI command (`crm-pipelines ui`)
serves the Dagster UI on the sandbox CRM. Through the UI's GraphQL API: the demo's run is there, the
snapshots show nothing missing, the sensors and the schedule are listed with their descriptions, a
three-day backfill launched from one snapshot's page re-pulls those days for all three snapshots and
counts them per day, an export stopped by its gate names the rejected row and why, and once
crm_change_sensor is on, a contact changed in the sandbox is synced within one interval."""

import json
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
        self.config_path = tmp_path / "integration.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_PIPELINES_", "DAGSTER_"))}
        env.update({"CRM_PIPELINES_CONFIG": str(self.config_path), "DAGSTER_HOME": str(tmp_path / "dagster_home")})
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/graphql"
        command = str(REPO / ".venv" / "bin" / "crm-pipelines")
        demo = subprocess.run([command, "demo", "--contacts", "300"], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=900)
        self.lines: list[str] = demo.stdout.splitlines()
        assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
        self.process = subprocess.Popen(
            [command, "ui", "--ui-port", str(self.port)], cwd=tmp_path, env=env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
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
            self.process.send_signal(signal.SIGTERM)  # `ui` stops the UI and saves the sandbox
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
    assert ".venv/bin/crm-pipelines ui" in output
    assert "Sandbox salesforce on https://127.0.0.1:" in output
    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True) as conn:
        assert conn.execute("select count(*) from enginy_contacts").fetchone()[0] == 300
        tables = {r[0] for r in conn.execute("select table_name from information_schema.tables").fetchall()}
    assert {f"enginy_{t.name}" for t in TABLES} <= tables
    assert {"crm_contacts", "crm_companies", "crm_leads", "crm_users", "crm_associations", "crm_schema"} <= tables
    runs = demo.graphql("""{ runsOrError { ... on Runs { results { status pipelineName } } } }""")
    assert runs["runsOrError"]["results"] == [{"status": "SUCCESS", "pipelineName": MATERIALIZE_ALL}]


METADATA = """metadataEntries { label ... on JsonMetadataEntry { jsonString } ... on IntMetadataEntry { intValue }
    ... on TextMetadataEntry { text } ... on MarkdownMetadataEntry { mdStr } }"""


def _metadata(entries: list[dict]) -> dict:
    return {e["label"]: next((v for k, v in e.items() if k != "label"), None) for e in entries}


def launch(demo: Demo, selection: list[str] | None, run_config: dict, job: str = "__ASSET_JOB") -> str:
    selector = {**REPOSITORY, "pipelineName": job}
    if selection is not None:
        selector["assetSelection"] = [{"path": [name]} for name in selection]
    launched = demo.graphql("""mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
        __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
        ... on InvalidSubsetError { message } ... on RunConfigValidationInvalid { errors { message } } } }""",
                            params={"selector": selector, "runConfigData": run_config, "mode": "default"})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]


def finished(demo: Demo, run_id: str, timeout: float = 600) -> str:
    def status():
        found = demo.graphql("""query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }""", id=run_id)
        value = found["runOrError"]["status"]
        return value if value in ("SUCCESS", "FAILURE", "CANCELED") else None
    return demo.wait_for(status, timeout, 3, f"run {run_id}")


def latest_materialization(demo: Demo, name: str) -> dict:
    node = demo.graphql(f"""query($key: AssetKeyInput!) {{ assetNodeOrError(assetKey: $key) {{ ... on AssetNode {{
        isPartitioned assetMaterializations(limit: 1) {{ runId {METADATA} }} }} }} }}""",
                        key={"path": [name]})["assetNodeOrError"]
    [latest] = node["assetMaterializations"]
    return {"partitioned": node["isPartitioned"], "run_id": latest["runId"], **_metadata(latest["metadataEntries"])}


@pytest.mark.slow
def test_after_the_readme_commands_the_ui_backfills_from_one_snapshot_stops_a_gate_with_its_rows_and_syncs_a_change(
        demo: Demo, tmp_path: Path) -> None:
    demo.wait_for(lambda: any("Dagster UI on" in line for line in demo.lines), 600, message="`crm-pipelines ui`")
    demo.wait_for(lambda: demo.graphql("{ version }"), 180, message="the Dagster UI")
    assert_the_demo_ran_every_asset_and_said_where_to_look(demo, tmp_path)

    location = demo.wait_for(lambda: [
        node for node in demo.graphql("""{ repositoriesOrError { ... on RepositoryConnection { nodes {
            location { name } sensors { name description } schedules { name description cronSchedule }
            assetNodes { assetKey { path } opNames } } } } }""")
        ["repositoriesOrError"]["nodes"] if node["sensors"]], 120, message="the code location")[0]
    sensors = {s["name"]: s["description"] for s in location["sensors"]}
    assert set(sensors) == {"crm_change_sensor", "enginy_change_sensor", "run_failure_alert", "failed_check_alert",
                            "automation_failure_alert", "stuck_run_alert"}
    assert all(sensors.values()) and "incremental_sync" in sensors["crm_change_sensor"]
    [schedule] = location["schedules"]
    assert schedule["name"] == "nightly_reconciliation_schedule" and "dry run" in schedule["description"]

    # After the full sync, no snapshot has anything missing: they are the CRM now, not days.
    snapshots = ("crm_companies", "crm_contacts", "crm_leads")
    for name in snapshots:
        first = latest_materialization(demo, name)
        assert first["partitioned"] is False and first["mode"] == "full"

    # A three-day backfill from crm_contacts' page: the UI launches every asset its step makes.
    op = {tuple(n["assetKey"]["path"]): n["opNames"] for n in location["assetNodes"]}[("crm_contacts",)]
    together = sorted(path[-1] for path, names in {tuple(n["assetKey"]["path"]): n["opNames"]
                                                   for n in location["assetNodes"]}.items() if names == op)
    assert together == sorted(snapshots)
    today = datetime.now(timezone.utc).date()
    days = [(today - timedelta(days=n)).isoformat() for n in (3, 2, 1)]
    backfill = launch(demo, together, {"ops": {"crm_snapshots": {"config": {
        "backfill_from": days[0], "backfill_to": days[-1]}}}})
    assert finished(demo, backfill) == "SUCCESS"
    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True) as conn:
        held = dict(conn.execute("SELECT strftime(last_modified AT TIME ZONE 'UTC', '%Y-%m-%d') AS day, count(*) "
                                 "FROM crm_contacts GROUP BY day").fetchall())
    for name in snapshots:
        pulled = latest_materialization(demo, name)
        assert pulled["run_id"] == backfill and pulled["mode"] == "backfill"
        assert list(json.loads(pulled["records_by_day"])) == days, "per-day counts for exactly those days"
    by_day = json.loads(latest_materialization(demo, "crm_contacts")["records_by_day"])
    assert {day: counts["records"] for day, counts in by_day.items()} == {day: held.get(day, 0) for day in days}

    # A person maps a field the CRM does not have and launches export_push: the gate stops it and
    # its check names the rejected row and the reason.
    config = yaml.safe_load(demo.config_path.read_text())
    good = demo.config_path.read_text()
    config["field_mapping"]["contacts"].append({"type": "fixed_value", "value": "x", "crm_field": "no_such_field"})
    demo.config_path.write_text(yaml.safe_dump(config))
    stopped = launch(demo, None, {}, job="export_push")
    assert finished(demo, stopped) == "FAILURE"
    demo.config_path.write_text(good)
    [gate] = demo.graphql(f"""{{ assetCheckExecutions(assetKey: {{path: ["contact_export_batch"]}},
        checkName: "export_gates", limit: 1) {{ runId status evaluation {{ description {METADATA} }} }} }}""")[
        "assetCheckExecutions"]
    assert gate["runId"] == stopped and gate["status"] == "FAILED"
    found = _metadata(gate["evaluation"]["metadataEntries"])
    assert found["rejected"] > 0 and "no_such_field: the CRM has no such field" in found["rejected_rows"]
    assert "no_such_field" in gate["evaluation"]["description"]

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
    assert finished(demo, run["runId"], 300) == "SUCCESS"

    demo.stop()
    assert demo.process.returncode == 0, "\n".join(demo.lines[-40:])
    assert any("crm_change_sensor turned off" in line for line in demo.lines), "\n".join(demo.lines[-10:])
    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True) as conn:
        title = conn.execute("SELECT job_title FROM crm_contacts WHERE crm_id = ?", [crm_id]).fetchone()[0]
    assert title == "Changed in the CRM (1)"
