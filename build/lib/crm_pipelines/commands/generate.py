"""`crm-pipelines generate`: realistic Enginy and CRM data with ground-truth labels."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from crm_pipelines.enginy.database import write_tables
from crm_pipelines.enginy.generator import generate_frames
from crm_pipelines.resources.warehouse import redact_url

DATA_DIR = Path("data")


def write_dataset(out: Path, contacts: int, seed: int, enginy_url: str | None, overlap: float = 0.5) -> dict:
    """Generate and write everything; returns counts and timings for the caller to print."""
    started = time.perf_counter()
    data = generate_frames(contacts, seed=seed, overlap=overlap)
    generated = time.perf_counter()
    url = enginy_url or f"sqlite:///{out / 'enginy.sqlite'}"
    write_tables(url, data.enginy)
    data.crm.save(out / "crm")
    (out / "labels").mkdir(parents=True, exist_ok=True)
    data.contact_labels.to_parquet(out / "labels" / "contacts.parquet", index=False)
    data.company_labels.to_parquet(out / "labels" / "companies.parquet", index=False)
    finished = time.perf_counter()
    return {"enginy_url": url, "summary": data.summary,
            "generate_seconds": generated - started, "write_seconds": finished - generated}


def generate(
    contacts: Annotated[int, typer.Option(help="Enginy contacts to generate; the CRM gets about as many.")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same data.")] = 42,
    overlap: Annotated[float, typer.Option(help="Share of Enginy contacts that also exist in the CRM.")] = 0.5,
    out: Annotated[Path, typer.Option(help="Folder for the CRM side (crm/*.parquet) and labels (labels/).")] = DATA_DIR,
    enginy_url: Annotated[str | None, typer.Option(
        envvar="ENGINY_DATABASE_URL",
        help="SQLAlchemy URL to write the Enginy tables to; default: OUT/enginy.sqlite.")] = None,
) -> None:
    """Generate Enginy data and a CRM side with a known overlap and labelled spelling variants.

    Writes the Enginy tables (contacts, companies, campaigns, steps, events, identities, users,
    conversation tags) to the Enginy database, the CRM side for the sandbox CRM to OUT/crm/, and
    the ground truth (entity id and variants of every record) to OUT/labels/, which the pipeline
    never reads. Existing Enginy tables at the URL are replaced.
    """
    if not 0 <= overlap <= 1:
        raise typer.BadParameter("--overlap must be between 0 and 1")
    result = write_dataset(out, contacts, seed, enginy_url, overlap)
    s = result["summary"]
    typer.echo(f"Enginy: {s['enginy_contacts']:,} contacts, {s['enginy_companies']:,} companies, "
               f"{s['campaign_events']:,} campaign events → {redact_url(result['enginy_url'])}")
    typer.echo(f"CRM side: {s['crm_contacts']:,} contacts ({s['shared_people']:,} shared with Enginy, "
               f"{s['crm_duplicate_contacts']:,} duplicated inside the CRM), {s['crm_companies']:,} companies "
               f"→ {out / 'crm'}")
    typer.echo(f"Labels → {out / 'labels'}")
    typer.echo(f"Took {result['generate_seconds']:.1f} s to generate, {result['write_seconds']:.1f} s to write.")
