"""Small syncs as the sensors launch them under the Dagster UI: one contact changed in the CRM
(crm_change_sensor → incremental_sync) and one contact changed in Enginy (enginy_change_sensor →
enginy_sync), each timed from the run's creation (the sensor's request) to its end, so the launch,
the run process loading the code location and every step count.

It runs the README's commands in a fresh directory — `crm-pipelines demo`, then `crm-pipelines ui`
— with the sensors' interval at six seconds, turns the sensors on through the UI's GraphQL API,
lets their first runs set the cursors, then makes the changes. The baseline, measured in the same
run, is what every run pays before its first step: a Python process loading the code location.

    .venv/bin/python -m bench.bench_ui_sync [--contacts 2000] [--rounds 3]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
import yaml

from crm_pipelines.crms.registry import example_config
from crm_pipelines.sandbox.server import free_port

REPO = Path(__file__).resolve().parents[1]
BIN = REPO / ".venv" / "bin"
REPOSITORY = {"repositoryLocationName": "crm_pipelines.definitions", "repositoryName": "__repository__"}


class Ui:
    def __init__(self, directory: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.lines: list[str] = []
        self.process = subprocess.Popen([str(BIN / "crm-pipelines"), "ui", "--ui-port", str(self.port)],
                                        cwd=directory, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, start_new_session=True)
        threading.Thread(target=lambda: [self.lines.append(line) for line in self.process.stdout],
                         daemon=True).start()

    def graphql(self, query: str, **variables) -> dict:
        answer = requests.post(f"http://127.0.0.1:{self.port}/graphql",
                               json={"query": query, "variables": variables}, timeout=30)
        body = answer.json()
        if "errors" in body:
            raise RuntimeError(body["errors"])
        return body["data"]

    def until(self, what, timeout: float):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                found = what()
            except (requests.RequestException, RuntimeError, KeyError, TypeError):
                found = None
            if found:
                return found
            time.sleep(1)
        raise TimeoutError("".join(self.lines[-30:]))

    def runs(self, job: str) -> list[dict]:
        return self.graphql("""query($job: String) { runsOrError(filter: {pipelineName: $job}) {
            ... on Runs { results { runId status creationTime startTime endTime } } } }""",
                            job=job)["runsOrError"]["results"]

    def finished_run(self, job: str, after: set[str], timeout: float = 600) -> dict:
        return self.until(lambda: next((r for r in self.runs(job) if r["runId"] not in after
                                        and r["status"] in ("SUCCESS", "FAILURE")), None), timeout)

    def start_sensor(self, name: str) -> None:
        self.graphql("""mutation($s: SensorSelector!) { startSensor(sensorSelector: $s) { __typename } }""",
                     s={**REPOSITORY, "sensorName": name})

    def stop(self) -> None:
        self.process.send_signal(subprocess.signal.SIGTERM)
        self.process.wait(timeout=120)


def change_an_enginy_contact(database: Path) -> None:
    """One Enginy contact gets a new job title, as a person edits it in Enginy."""
    import sqlite3
    from datetime import datetime, timezone

    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE contacts SET job_title = job_title || ' (edited)', updated_at = ? "
                     "WHERE id = (SELECT min(id) FROM contacts)",
                     [datetime.now(timezone.utc).replace(tzinfo=None).isoformat(sep=" ")])


def code_location_load_seconds(env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "from crm_pipelines.definitions import defs; defs()"], env=env,
                   check=True, cwd=REPO)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="bench-ui-sync-"))
    config = yaml.safe_load(example_config("salesforce").read_text())
    config["automation"] = {"sync_interval_minutes": 0.1}
    (directory / "integration.yaml").write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_PIPELINES_", "DAGSTER_", "ENGINY_"))}
    env.update({"CRM_PIPELINES_CONFIG": str(directory / "integration.yaml"),
                "DAGSTER_HOME": str(directory / ".dagster_home")})
    subprocess.run([str(BIN / "crm-pipelines"), "demo", "--contacts", str(args.contacts)], cwd=directory, env=env,
                   check=True, stdout=subprocess.DEVNULL)
    baseline = min(code_location_load_seconds(env) for _ in range(3))
    ui = Ui(directory, env)
    try:
        ui.until(lambda: ui.graphql("{ version }"), 300)
        ui.until(lambda: ui.graphql("""{ repositoriesOrError { ... on RepositoryConnection {
            nodes { sensors { name } } } } }""")["repositoriesOrError"]["nodes"][0]["sensors"], 120)
        timings: dict[str, list[float]] = {"incremental_sync": [], "enginy_sync": []}
        for job, sensor in (("incremental_sync", "crm_change_sensor"), ("enginy_sync", "enginy_change_sensor")):
            ui.start_sensor(sensor)
            ui.finished_run(job, set())  # the first tick has no cursor: this run sets it
            for _ in range(args.rounds):
                before = {r["runId"] for r in ui.runs(job)}
                if job == "incremental_sync":
                    ui.process.stdin.write("\n")  # `ui` changes one contact in the sandbox CRM
                    ui.process.stdin.flush()
                else:
                    change_an_enginy_contact(directory / "data" / "enginy.sqlite")
                run = ui.finished_run(job, before)
                assert run["status"] == "SUCCESS", "".join(ui.lines[-30:])
                timings[job].append(run["endTime"] - run["creationTime"])
    finally:
        ui.stop()
    print(f"loading the code location in a new process (baseline): {baseline:.1f} s")
    for job, seconds in timings.items():
        best = min(seconds)
        print(f"one contact changed → {job}: {', '.join(f'{s:.1f}' for s in seconds)} s "
              f"(best {best:.1f} s, {best / baseline:.1f}x the baseline), request to end")


if __name__ == "__main__":
    main()
