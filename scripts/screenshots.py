"""Re-take the README's screenshots of the Dagster UI and the match-quality report.

    .venv/bin/python scripts/screenshots.py

From a clean temporary directory (its own data/ and DAGSTER_HOME; the checkout's data/ and
.dagster_home are not touched), this runs `crm-pipelines demo --contacts 300 --serve` on the
embedded defaults and, through the UI's GraphQL API as the launchpad would: a six-day backfill of
the CRM snapshots (full_backfill with backfill_from/backfill_to); then a failing export gate, met
as a user meets it: a tenth of the contacts' emails in the Enginy database are mangled ("name at
domain", as a bad import writes them), enginy_sync rebuilds the export batches, and the contact
batch's blocking export_gates check fails on the rejected rows. Headless Chromium
(/usr/bin/chromium, Debian's chromium package; no Python dependency) then writes into
docs/screenshots/:

    asset-graph.png           the global asset lineage, one box per asset group
    snapshot.png              crm_contacts after the backfill: mode, records pulled, records_by_day
    failing-gate.png          the failed check: its description names the rejected rows and why
    match-quality-report.png  data/reports/match_quality_report.html

Everything it started is stopped at the end. It takes about five minutes on two cores.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

# What the script assumes of the project and of Dagster's UI, in one place.
CHROMIUM = "/usr/bin/chromium"
CONTACTS = 300  # a demo of a minute or two
BAD_EMAILS = 30  # a tenth of the contacts: over the 5% of rejected rows a batch may hold (max_rejected_share)
GATED_JOB = "enginy_sync"  # rebuilds the export batches from Enginy and runs their gates; pushes nothing
SNAPSHOT = "crm_contacts"
SNAPSHOT_STEP = "crm_snapshots"  # the step that pulls it, whose config takes a backfill's days
BACKFILL_JOB = "full_backfill"
# Days on which the generated CRM (seed 42, crm_pipelines/enginy/generator.py) modified some of its contacts.
BACKFILL = ("2025-11-01", "2025-11-06")
REPOSITORY = {"repositoryLocationName": "crm_pipelines.definitions", "repositoryName": "__repository__"}
# name: (path under the UI or a file of the demo's directory, window size, text in its DOM once rendered)
SHOTS = {
    # Groups collapsed (a CSS class of their boxes): the page's default here, and the only legible
    # view of some forty assets in one window.
    "asset-graph": ("/asset-groups", (1600, 1000), "CollapsedGroupNode"),
    # The backfill's first day: in records_by_day and pull_since, not in the asset's description.
    "snapshot": (f"/assets/{SNAPSHOT}", (1600, 1700), BACKFILL[0]),
    "failing-gate": ("/assets/{asset}?view=checks&checkDetail={check}", (1600, 1000), "is not an email address"),
    "match-quality-report": ("data/reports/match_quality_report.html", (1600, 1400), "Match quality"),
}

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "screenshots"
BUDGETS_MS = (15_000, 30_000, 60_000)  # Chromium's virtual time per try: a page on a busy machine gets longer


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="crm-screenshots-") as tmp:
        work = Path(tmp)
        port = free_port()
        demo = start_demo(work, port)
        try:
            ui = f"http://127.0.0.1:{port}"
            wait_for_ui(demo, ui, work / "demo.log")
            # The UI greets a first visit on 127.0.0.1 with a newsletter dialog over every page.
            graphql(ui, "mutation { setNuxSeen }")
            # A backfill, so the snapshot's latest materialization counts its records per day.
            backfill = {"ops": {SNAPSHOT_STEP: {"config": {"backfill_from": BACKFILL[0], "backfill_to": BACKFILL[1]}}}}
            status = run_job(ui, BACKFILL_JOB, backfill)
            if status != "SUCCESS":
                raise SystemExit(f"{BACKFILL_JOB}: {status}\n{tail(work / 'demo.log')}")
            mangle_emails(work / "data" / "enginy.sqlite")
            run_job(ui, GATED_JOB, {})
            asset, check = failed_check(ui)
            OUT.mkdir(parents=True, exist_ok=True)
            for name, (where, size, expect) in SHOTS.items():
                where = where.format(asset=asset, check=check)
                url = ui + where if where.startswith("/") else (work / where).as_uri()
                screenshot(url, OUT / f"{name}.png", size, expect)
                print(f"{OUT / name}.png  ({url})")
        finally:
            stop(demo)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_demo(work: Path, port: int) -> subprocess.Popen:
    """The demo on embedded defaults in ``work``, with this checkout's code; its stdin a pipe
    kept open, since --serve reads a line there to change a contact and serves until it closes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_PIPELINES_", "DAGSTER_", "ENGINY_"))}
    env["DAGSTER_HOME"] = str(work / ".dagster_home")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    print(f"Running the demo with {CONTACTS} contacts in {work} …")
    with (work / "demo.log").open("w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "crm_pipelines.cli", "demo", "--contacts", str(CONTACTS), "--serve",
             "--ui-port", str(port)], cwd=work, env=env, stdin=subprocess.PIPE, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)


def wait_for_ui(demo: subprocess.Popen, ui: str, log: Path, timeout: float = 1200) -> None:
    """Until the UI answers with the code location loaded (the demo's run comes first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if demo.poll() is not None:
            raise SystemExit(f"the demo stopped (exit code {demo.returncode}):\n{tail(log)}")
        try:
            if graphql(ui, "{ repositoriesOrError { ... on RepositoryConnection { nodes { name } } } }")[
                    "repositoriesOrError"].get("nodes"):
                return
        except requests.RequestException:
            pass
        time.sleep(3)
    raise SystemExit(f"the Dagster UI did not come up within {timeout:.0f} s:\n{tail(log)}")


def tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def graphql(ui: str, query: str, **variables) -> dict:
    answer = requests.post(f"{ui}/graphql", json={"query": query, "variables": variables}, timeout=60)
    answer.raise_for_status()
    body = answer.json()
    if "errors" in body:
        raise SystemExit(f"GraphQL: {body['errors']}")
    return body["data"]


def mangle_emails(database: Path) -> None:
    """Emails as a bad import leaves them, and updated now, as an edit in Enginy is."""
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE contacts SET email = replace(email, '@', ' at '), "
                     "updated_at = strftime('%Y-%m-%d %H:%M:%f', 'now') "
                     "WHERE id IN (SELECT id FROM contacts WHERE email LIKE '%@%' ORDER BY id LIMIT ?)",
                     (BAD_EMAILS,))
    print(f"Mangled {BAD_EMAILS} contacts' emails in {database}")


def run_job(ui: str, job: str, run_config: dict, timeout: float = 1200) -> str:
    """Launch ``job`` as the launchpad does and wait for it to end: its status."""
    launched = graphql(ui, """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
        __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
        ... on RunConfigValidationInvalid { errors { message } } } }""",
                       params={"selector": {**REPOSITORY, "jobName": job}, "runConfigData": run_config})["launchRun"]
    if launched["__typename"] != "LaunchRunSuccess":
        raise SystemExit(f"launching {job}: {launched}")
    run_id = launched["run"]["runId"]
    print(f"Launched {job} (run {run_id}); waiting for it to end …")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = graphql(ui, "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }",
                         id=run_id)["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            print(f"{job}: {status}")
            return status
        time.sleep(5)
    raise SystemExit(f"{job} did not end within {timeout:.0f} s")


def failed_check(ui: str) -> tuple[str, str]:
    """The first asset check (by asset name) that failed on its asset's latest materialization."""
    nodes = graphql(ui, """{ assetNodes { assetKey { path } assetChecksOrError { ... on AssetChecks {
        checks { name executionForLatestMaterialization { status } } } } } }""")["assetNodes"]
    failed = sorted(("/".join(node["assetKey"]["path"]), check["name"]) for node in nodes
                    for check in node["assetChecksOrError"].get("checks", [])
                    if (check["executionForLatestMaterialization"] or {}).get("status") == "FAILED")
    if not failed:
        raise SystemExit(f"no asset check failed after {GATED_JOB}: the mangled emails were let through")
    return failed[0]


def screenshot(url: str, path: Path, size: tuple[int, int], expect: str) -> None:
    """The page once ``expect`` is in its DOM. Chromium's virtual time runs only while no request
    is pending, so the budget is the page's own time to render after its data came, not a sleep;
    the DOM dumped with the screenshot says whether it did."""
    command = [CHROMIUM, "--headless", "--disable-gpu", "--hide-scrollbars", f"--window-size={size[0]},{size[1]}",
               "--dump-dom", f"--screenshot={path}"]
    if os.geteuid() == 0:  # Chromium refuses to start its sandbox as root (containers, CI)
        command.append("--no-sandbox")
    for budget in BUDGETS_MS:
        dom = subprocess.run([*command, f"--virtual-time-budget={budget}", url], capture_output=True, text=True,
                             timeout=budget / 1000 + 120).stdout
        if expect in dom:
            return
    path.unlink(missing_ok=True)
    raise SystemExit(f"{url} did not show {expect!r} within {BUDGETS_MS[-1] / 1000:.0f} s of virtual time")


def stop(demo: subprocess.Popen) -> None:
    """As Ctrl-C stops the demo, whatever it is doing: it stops its UI (with the daemon and code
    server) and its sandbox CRM, which run in process groups of their own."""
    if demo.poll() is None:
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()


if __name__ == "__main__":
    if not shutil.which(CHROMIUM):
        raise SystemExit(f"{CHROMIUM} not found: apt-get install chromium")
    main()
