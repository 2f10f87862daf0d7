"""`crm-pipelines demo`: the whole pipeline end to end on embedded defaults."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import typer

from crm_pipelines.commands.generate import DATA_DIR, write_dataset
from crm_pipelines.config import CONFIG_ENV_VAR, load_config
from crm_pipelines.resources.warehouse import redact_url
from crm_pipelines.sandbox import crms
from crm_pipelines.sandbox.app import SandboxContext
from crm_pipelines.sandbox.connection import client_environment
from crm_pipelines.sandbox.seed import SeedData
from crm_pipelines.sandbox.server import start_in_thread

DEFAULT_DAGSTER_HOME = Path(".dagster_home")


def demo(
    contacts: Annotated[int, typer.Option(help="Enginy contacts to generate when there is no data yet.")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed for generated data.")] = 42,
    regenerate: Annotated[bool, typer.Option(help="Generate fresh data even if data/ has some.")] = False,
) -> None:
    """Generate data if needed, start the sandbox CRM, and materialize every asset in one Dagster run.

    Uses the embedded defaults unless the environment says otherwise: the Enginy database
    data/enginy.sqlite (ENGINY_DATABASE_URL), the DuckDB warehouse data/warehouse.duckdb
    (CRM_PIPELINES_WAREHOUSE_URL), and a SQLite Dagster instance in .dagster_home (DAGSTER_HOME),
    so the run shows up afterwards in `dagster dev`.
    """
    import dagster as dg

    from crm_pipelines.definitions import MATERIALIZE_ALL, defs

    home = Path(os.environ.get("DAGSTER_HOME") or DEFAULT_DAGSTER_HOME).resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)

    enginy_url = os.environ.get("ENGINY_DATABASE_URL")
    generate_now = regenerate or not (DATA_DIR / "crm" / "contacts.parquet").exists() or (
        not enginy_url and not (DATA_DIR / "enginy.sqlite").exists())
    if generate_now:
        typer.echo(f"Generating {contacts:,} contacts (seed {seed}) into {DATA_DIR}/ …")
        write_dataset(DATA_DIR, contacts, seed, enginy_url)

    active = load_config(os.environ.get(CONFIG_ENV_VAR) or None).active_crm
    ctx = SandboxContext(crms=(active,))
    # The sandbox keeps its records between demos, as a real CRM would: what one demo pushed,
    # the next one finds (the warehouse's snapshots and write ledger remember it too).
    state = DATA_DIR / f"sandbox-{active}.json"
    if generate_now:  # new data: the sandbox CRM and the default warehouse start again from it
        state.unlink(missing_ok=True)
        if not os.environ.get("CRM_PIPELINES_WAREHOUSE_URL"):
            (DATA_DIR / "warehouse.duckdb").unlink(missing_ok=True)
    if state.exists():
        ctx.store.load(state)
        loaded = {active: sum(len(ctx.store.records(c, o)) for c, o in ctx.store.objects())}
    else:
        loaded = crms.seed(ctx, SeedData.load(DATA_DIR / "crm"))
    sandbox = start_in_thread(ctx, tls_dir=DATA_DIR / "sandbox-tls")
    os.environ["REQUESTS_CA_BUNDLE"] = str(sandbox.tls.ca_bundle.resolve())
    os.environ.update(client_environment(active, sandbox))
    typer.echo(f"Sandbox {active} on {sandbox.base_url} with {loaded[active]:,} records "
               f"(integration config: {os.environ.get(CONFIG_ENV_VAR) or 'the bundled ' + active + ' example'})")
    try:
        definitions = defs()
        job = definitions.resolve_job_def(MATERIALIZE_ALL)
        today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        with dg.DagsterInstance.get() as instance:
            result = job.execute_in_process(instance=instance, partition_key=today, raise_on_error=False)
            _report(result, home)
    finally:
        sandbox.stop()
        ctx.store.save(state)
    if not result.success:
        raise typer.Exit(1)


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
    typer.echo("")
    typer.echo("Where to look:")
    warehouse = os.environ.get("CRM_PIPELINES_WAREHOUSE_URL") or "duckdb:///data/warehouse.duckdb"
    typer.echo(f"  the warehouse tables:  {redact_url(warehouse)}")
    if warehouse.startswith("duckdb:///"):
        path = warehouse.removeprefix("duckdb:///")
        typer.echo("    .venv/bin/python -c \"import duckdb; "
                   f"print(duckdb.connect('{path}', read_only=True).sql('from crm_contacts limit 5'))\"")
    typer.echo(f"  the run in the Dagster UI:  DAGSTER_HOME={home} .venv/bin/dagster dev -w workspace.yaml "
               "then open http://127.0.0.1:3000")
