"""`crm-pipelines`: the one command-line entry point of the project."""

from __future__ import annotations

import typer

from crm_pipelines.commands.demo import demo, ui
from crm_pipelines.commands.dry_run import dry_run
from crm_pipelines.commands.generate import generate
from crm_pipelines.commands.match import match
from crm_pipelines.commands.review import review_mapping
from crm_pipelines.commands.sandbox import sandbox

app = typer.Typer(
    help="Keep an outreach tool's contacts and companies and a CRM in step, without duplicates.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold credentials
)
app.command()(generate)
app.command()(demo)
app.command()(ui)
app.command()(sandbox)
app.command("review-mapping")(review_mapping)
app.command()(match)
app.command("dry-run")(dry_run)

if __name__ == "__main__":
    app()
