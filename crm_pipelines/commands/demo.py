"""`crm-pipelines demo`: the whole pipeline end to end on embedded defaults."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from crm_pipelines.commands.generate import DATA_DIR, write_dataset
from crm_pipelines.config import CONFIG_ENV_VAR, load_config
from crm_pipelines.resources.warehouse import redact_url
from crm_pipelines.crms.registry import client_environment, facts
from crm_pipelines.sandbox.server import free_port
from crm_pipelines.sandbox.tls import SandboxTls, ensure_certificate

DEFAULT_DAGSTER_HOME = Path(".dagster_home")
DEMO_INSTANCE = """# The demo's Dagster instance: SQLite storage in this folder (Dagster's default).
telemetry:
  enabled: false
# One run building or pushing the export batches at a time (a push launched from the UI waits in
# the queue for the sensor's sync), and one CRM-writing step at a time across runs (the crm_writes
# pool): see deploy/dagster.postgres.yaml.
concurrency:
  runs:
    tag_concurrency_limits:
      - key: crm_pipelines/export_batches
        limit: 1
  pools:
    default_limit: 1
# Runs stuck starting or cancelling fail after three minutes (see deploy/dagster.postgres.yaml).
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  cancel_timeout_seconds: 180
  max_resume_run_attempts: 0
  poll_interval_seconds: 60
"""
SAVE_SECONDS = 600  # the most a stopping sandbox is given to save its records


def demo(
    contacts: Annotated[int, typer.Option(help="Enginy contacts to generate when there is no data yet.")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed for generated data.")] = 42,
    regenerate: Annotated[bool, typer.Option(help="Generate fresh data even if data/ has some.")] = False,
    serve: Annotated[bool, typer.Option(help=(
        "After the run, keep the sandbox CRM up and start the Dagster UI on it: turn crm_change_sensor on "
        "there, press Enter here to change a contact in the sandbox, and watch the sensor sync it."))] = False,
    ui_port: Annotated[int, typer.Option(help="Port of the Dagster UI started by --serve.")] = 3000,
    verbose: Annotated[bool, typer.Option(
        help="Print every Dagster event (DEBUG) and dbt's log, not only INFO.")] = False,
) -> None:
    """Generate data if needed, start the sandbox CRM, and materialize every asset in one Dagster run.

    Uses the embedded defaults unless the environment says otherwise: the Enginy database
    data/enginy.sqlite (ENGINY_DATABASE_URL), the DuckDB warehouse data/warehouse.duckdb
    (CRM_PIPELINES_WAREHOUSE_URL), and a SQLite Dagster instance in .dagster_home (DAGSTER_HOME),
    so the run shows up afterwards in `dagster dev`.
    """
    home = _dagster_home()
    with demo_sandbox(contacts, seed, regenerate) as (active, _):
        result = materialize_everything("DEBUG" if verbose else "INFO")
        _report(result, home)
        if serve and result.success:
            _serve(active, ui_port)
    if not result.success:
        raise typer.Exit(1)


def ui(
    ui_port: Annotated[int, typer.Option(help="Port of the Dagster UI.")] = 3000,
    contacts: Annotated[int, typer.Option(help="Enginy contacts to generate when there is no data yet.")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed for generated data.")] = 42,
) -> None:
    """The Dagster UI on the sandbox CRM: start the sandbox with the demo's data (generated if there is
    none), point the CRM's environment variables at it, and serve `dagster dev` on the instance in
    DAGSTER_HOME (default .dagster_home, where `crm-pipelines demo` put its run) until Ctrl-C.

    Every job, sensor and backfill launched there reaches the sandbox. On the way out it turns
    crm_change_sensor off again: left on, a later `dagster dev` without a CRM would fail every tick."""
    _dagster_home()
    with demo_sandbox(contacts, seed, regenerate=False) as (active, _):
        _serve(active, ui_port)


def _dagster_home() -> Path:
    home = Path(os.environ.get("DAGSTER_HOME") or DEFAULT_DAGSTER_HOME).resolve()
    home.mkdir(parents=True, exist_ok=True)
    # A new demo instance gets a dagster.yaml of its own: without one Dagster prints a notice and
    # its telemetry banner on every command. One already there is the user's, and stays as it is.
    settings = home / "dagster.yaml"
    if not settings.exists():
        settings.write_text(DEMO_INSTANCE)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


@dataclass(frozen=True)
class SandboxProcess:
    """The sandbox CRM serving from a process of its own, as a real CRM answers from elsewhere:
    its records are not in the pipeline's memory and its work not on the pipeline's core."""

    base_url: str
    tls: SandboxTls
    process: subprocess.Popen

    def stats(self) -> dict:
        """/_sandbox/stats: call counts, and each call's span when started with record_spans."""
        import requests

        return requests.get(f"{self.base_url}/_sandbox/stats", verify=str(self.tls.ca_bundle), timeout=60).json()

    def stop(self) -> None:
        """As Ctrl-C stops it: the sandbox stops serving, then saves its records (uvicorn raises a
        SIGTERM again once it has stopped, which would end the process before the save)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=SAVE_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextmanager
def demo_sandbox(contacts: int, seed: int, regenerate: bool,
                 record_spans: bool = False) -> Iterator[tuple[str, SandboxProcess]]:
    """Data generated into data/ if needed, and the sandbox CRM standing for the active CRM up on
    it with the pipeline's environment pointed at it: (its name, the sandbox) while the block runs.
    The sandbox's records are saved when it ends, as a real CRM keeps them."""
    enginy_url = os.environ.get("ENGINY_DATABASE_URL")
    generate_now = regenerate or not (DATA_DIR / "crm" / "contacts.parquet").exists() or (
        not enginy_url and not (DATA_DIR / "enginy.sqlite").exists())
    if generate_now:
        typer.echo(f"Generating {contacts:,} contacts (seed {seed}) into {DATA_DIR}/ …")
        write_dataset(DATA_DIR, contacts, seed, enginy_url)

    # The sandbox CRM standing for the active CRM (for the Custom CRM, the first of its in-house examples).
    active = next(iter(facts(load_config(os.environ.get(CONFIG_ENV_VAR) or None).active_crm).emulators))
    # The sandbox keeps its records between demos, as a real CRM would: what one demo pushed,
    # the next one finds (the warehouse's snapshots and write ledger remember it too).
    state = DATA_DIR / f"sandbox-{active}.jsonl"
    if generate_now:  # new data: the sandbox CRM and the default warehouse start again from it
        state.unlink(missing_ok=True)
        if not os.environ.get("CRM_PIPELINES_WAREHOUSE_URL"):
            (DATA_DIR / "warehouse.duckdb").unlink(missing_ok=True)
    tls_dir = DATA_DIR / "sandbox-tls"
    tls, port = ensure_certificate(tls_dir), free_port()
    command = [sys.executable, "-m", "crm_pipelines.cli", "sandbox", "--crm", active, "--port", str(port),
               "--state", str(state), "--seed-from", str(DATA_DIR / "crm"), "--tls-dir", str(tls_dir)]
    sandbox = SandboxProcess(f"https://127.0.0.1:{port}", tls, subprocess.Popen(
        command + (["--record-spans"] if record_spans else []), start_new_session=True))
    try:
        _wait_until_serving(sandbox)
        os.environ["REQUESTS_CA_BUNDLE"] = str(tls.ca_bundle.resolve())
        os.environ.update(client_environment(active, sandbox))
        typer.echo(f"Sandbox {active} on {sandbox.base_url}, pid {sandbox.process.pid} (integration config: "
                   f"{os.environ.get(CONFIG_ENV_VAR) or 'the bundled ' + active + ' example'})")
        yield active, sandbox
    finally:
        sandbox.stop()


def _wait_until_serving(sandbox: SandboxProcess) -> None:
    """Until the sandbox answers (seeding or loading a million records takes a minute or two)."""
    import requests

    while sandbox.process.poll() is None:
        try:
            sandbox.stats()
            return
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.2)
    raise typer.Exit(f"the sandbox CRM stopped before serving (exit code {sandbox.process.returncode})")


def materialize_all_here():
    """materialize_all with its steps in this process: a demo's run needs no process per step."""
    import dagster as dg

    from crm_pipelines.definitions import MATERIALIZE_ALL, defs

    return defs().resolve_job_def(MATERIALIZE_ALL).with_executor_def(dg.in_process_executor)


def materialize_everything(log_level: str = "INFO"):
    """materialize_all of the code location on the Dagster instance of DAGSTER_HOME, printing the
    run's events from ``log_level`` up (every event is stored either way, for the UI).

    Through execute_job, not execute_in_process: the latter keeps every step's output in memory
    until the run ends (for output_for_node), which at a million contacts is every table of the
    run at once; here each output is dropped once the warehouse has it."""
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        return dg.execute_job(dg.reconstructable(materialize_all_here), instance,
                              run_config={"loggers": {"console": {"config": {"log_level": log_level}}}})


def _report(result, home: Path) -> None:
    import dagster as dg

    typer.echo("")
    typer.echo(f"Run {result.run_id}: {'SUCCESS' if result.success else 'FAILURE'}")
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        rows = materialization.metadata.get("dagster/row_count")
        table = materialization.metadata.get("warehouse_table")
        typer.echo(f"  {materialization.asset_key.to_user_string():32} "
                   f"{(f'{rows.value:,} rows' if rows else ''):>14}  {table.value if table else ''}")
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            typer.echo(f"  FAILED {event.step_key}: {event.event_specific_data.error.message.strip()}")
    checks = [e.event_specific_data for e in result.all_events
              if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION]
    gates = [c for c in checks if c.check_name == "export_gates"]
    if gates:
        typer.echo("Export gates: " + ", ".join(f"{c.asset_key.to_user_string()} {'passed' if c.passed else 'FAILED'}"
                                                for c in gates))
    tests = [c for c in checks if c.check_name != "export_gates"]
    if tests:
        typer.echo(f"dbt tests: {sum(c.passed for c in tests)} of {len(tests)} passed")
    typer.echo("")
    typer.echo("Where to look:")
    warehouse = os.environ.get("CRM_PIPELINES_WAREHOUSE_URL") or "duckdb:///data/warehouse.duckdb"
    typer.echo(f"  the warehouse tables:  {redact_url(warehouse)}")
    if warehouse.startswith("duckdb:///"):
        path = warehouse.removeprefix("duckdb:///")
        typer.echo("    .venv/bin/python -c \"import duckdb; "
                   f"print(duckdb.connect('{path}', read_only=True).sql('from crm_contacts limit 5'))\"")
    report = Path("data/reports/match_quality_report.html")
    if report.exists():
        typer.echo(f"  the match-quality report:  {report}")
    typer.echo("  the run in the Dagster UI, on the sandbox CRM:  .venv/bin/crm-pipelines ui   "
               "then open http://127.0.0.1:3000")


def _serve(active: str, ui_port: int) -> None:
    """`dagster dev` on the same instance, sandbox and warehouse, until Ctrl-C; each line read
    from stdin changes a contact in the sandbox CRM through its API, as a CRM user would."""
    def stop(signum, frame):  # a SIGTERM ends the demo as Ctrl-C does: UI stopped, sandbox saved
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    interval = load_config(os.environ.get(CONFIG_ENV_VAR) or None).automation.sync_interval_minutes
    command = [str(Path(sys.executable).with_name("dagster")), "dev", "-m", "crm_pipelines.definitions",
               "-h", "127.0.0.1", "-p", str(ui_port)]
    # Its own process group, so stopping it stops the daemon and code server it starts too.
    server = subprocess.Popen(command, start_new_session=True)
    typer.echo(f"\nDagster UI on http://127.0.0.1:{ui_port} (pid {server.pid}). Turn on crm_change_sensor under "
               f"Automation; it asks the sandbox every {interval:g} minutes.")
    typer.echo("Press Enter to change a contact in the sandbox CRM; Ctrl-C to stop.")
    try:
        for count, _ in enumerate(sys.stdin, start=1):
            typer.echo(_change_a_contact(active, count))
        server.wait()  # stdin closed (not a terminal): serve until interrupted
    except KeyboardInterrupt:
        pass
    finally:
        _stop_group(server)
        stopped = _stop_sensors_needing_the_sandbox()
        typer.echo("Dagster UI stopped." + (f" {', '.join(stopped)} turned off: it asks the sandbox CRM, which stops "
                                            "now; `crm-pipelines ui` serves it again." if stopped else ""))


def _stop_sensors_needing_the_sandbox() -> list[str]:
    """Turn crm_change_sensor off in DAGSTER_HOME's instance if it was left running."""
    from dagster import DagsterInstance
    from dagster._core.scheduler.instigation import InstigatorStatus, InstigatorType

    stopped = []
    with DagsterInstance.get() as instance:
        for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
            if state.name == "crm_change_sensor" and state.status == InstigatorStatus.RUNNING:
                instance.update_instigator_state(state.with_status(InstigatorStatus.STOPPED))
                stopped.append(state.name)
    return stopped


def _stop_group(process) -> None:
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        if process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=wait)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            continue


def _change_a_contact(active: str, count: int) -> str:
    """Edit the job title of one contact of the snapshot through the CRM's own API."""
    from crm_pipelines.commands.review import warehouse_from_env
    from crm_pipelines.export.writes import Write
    from crm_pipelines.crms.registry import crm_of, crm_resource

    config = load_config(os.environ.get(CONFIG_ENV_VAR) or None)
    field = next((m.crm_field for m in config.field_mapping.contacts
                  if m.type == "enginy_field" and m.enginy_field == "job_title"), None)
    if field is None:
        return "the contacts tab maps no job_title field, so the demo has nothing to change"
    contacts = warehouse_from_env().read_table("crm_contacts")
    live = sorted(contacts.loc[~contacts["is_deleted"].astype(bool), "crm_id"].astype(str))
    if not live:
        return "the crm_contacts snapshot holds no contact to change"
    crm_id = live[count % len(live)]
    value = f"Changed in the CRM ({count})"
    resource = crm_resource(crm_of(active), config.crm.settings.environment).process_config_and_initialize()
    [result] = resource.client().push(
        "contacts", [Write(f"demo-change-{count}", "update", "", {field: value}, crm_id=crm_id)])
    if result.status != "updated":
        return f"the {active} sandbox did not take the change: {result.error}"
    return f"contact {crm_id}: {field} is now {value!r} in the {active} sandbox"
