"""`crm-pipelines sandbox`: the emulated CRMs (Salesforce, HubSpot, Dynamics 365, Pipedrive, Zoho CRM,
TribeCRM and the Custom CRM's two in-house APIs) over HTTPS."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from crm_pipelines.crms.registry import emulated_names
from crm_pipelines.sandbox.app import SandboxContext, seed
from crm_pipelines.sandbox.faults import FaultRule
from crm_pipelines.enginy.crm_side import SeedData
from crm_pipelines.sandbox.server import serve_forever
from crm_pipelines.sandbox.tls import ensure_certificate


# Every CRM the sandbox emulates (crm_pipelines/crms/registry.py), as the choices of --crm.
Crm = Enum("Crm", {name: name for name in emulated_names()}, type=str)


def sandbox(
    crm: Annotated[list[Crm] | None, typer.Option(help="CRM to serve (repeat for several); default: all.")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on; keep it on loopback.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (HTTPS).")] = 8443,
    seed_from: Annotated[Path | None, typer.Option(
        help="Folder with the CRM side written by `crm-pipelines generate` (e.g. data/crm).")] = None,
    state: Annotated[Path | None, typer.Option(
        help="JSON-lines file holding the sandbox's records: loaded at start if it exists, saved at exit.")] = None,
    tls_dir: Annotated[Path, typer.Option(help="Where the self-signed certificate and CA bundle are kept.")] = Path(
        "data/sandbox-tls"),
    fault: Annotated[list[str] | None, typer.Option(
        help='A fault rule as JSON (repeatable), e.g. \'{"crm": "hubspot", "status": 429, "retry_after": 2, '
             '"rate": 0.1}\' or \'{"endpoint": "/crm/v3/objects/{objectType}/batch/create", "kind": "drop", '
             '"nth": 3}\'; see crm_pipelines/sandbox/faults.py. More can be added at run time with POST '
             '/_sandbox/faults.')] = None,
    setting: Annotated[list[str] | None, typer.Option(
        help="A CRM setting as CRM.NAME=JSON (repeatable), e.g. hubspot.burst_limit=100 or "
             "salesforce.daily_api_limit=5000; PATCH /_sandbox/settings/{crm} changes them at run time.")] = None,
    record_spans: Annotated[bool, typer.Option(
        help="Keep each call's start and end (GET /_sandbox/stats lists them): what a benchmark needs to "
             "tell time waiting on the CRM from its own.")] = False,
) -> None:
    """Serve the sandbox CRM: the real wire APIs of Salesforce (REST, Bulk 2.0), HubSpot (CRM v3/v4)
    and Dynamics 365 (Dataverse Web API with an OAuth authority), so the official clients run
    unchanged against it. Faults, call counts and record histories are under /_sandbox/.
    """
    ctx = SandboxContext(crms=tuple(c.value for c in crm) if crm else SandboxContext().crms)
    if record_spans:
        ctx.stats.spans = []
    for text in fault or []:
        ctx.faults.add(parse_fault(text))
    for text in setting or []:
        name, value = parse_setting(text)
        ctx.crm_settings(name[0]).update({name[1]: value})
    if state and state.exists():
        ctx.store.load(state)
        typer.echo(f"Loaded sandbox state from {state}")
    elif seed_from:
        loaded = seed(ctx, SeedData.load(seed_from))
        typer.echo("Seeded " + ", ".join(f"{name}: {n:,} records" for name, n in loaded.items()))
    tls = ensure_certificate(tls_dir)
    typer.echo(f"Sandbox CRM ({', '.join(ctx.crms)}) on https://{host}:{port}")
    typer.echo(f"Clients must trust its certificate: export REQUESTS_CA_BUNDLE={tls.ca_bundle.resolve()}")
    try:
        serve_forever(ctx, host=host, port=port, tls_dir=tls_dir)
    finally:
        if state:
            ctx.store.save(state)
            typer.echo(f"Saved sandbox state to {state}")


def parse_fault(text: str) -> FaultRule:
    """A --fault value as a fault rule, or a usage error that says what is wrong."""
    try:
        return FaultRule.model_validate_json(text)
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r} is not a fault rule: {exc}. Give JSON such as "
                                 '\'{"crm": "hubspot", "status": 503, "rate": 0.2}\'', param_hint="--fault") from None


def parse_setting(text: str) -> tuple[tuple[str, str], object]:
    """A --setting value CRM.NAME=JSON as ((crm, name), value); a bare word is taken as a string."""
    key, sep, raw = text.partition("=")
    crm, dot, name = key.partition(".")
    if not sep or not dot or crm not in {c.value for c in Crm} or not name:
        raise typer.BadParameter(f"{text!r}: write CRM.NAME=VALUE with CRM one of {', '.join(c.value for c in Crm)}, "
                                 "e.g. hubspot.burst_limit=100", param_hint="--setting")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return (crm, name), value
