"""What a newcomer runs: the CLI's help and a code location Dagster accepts (the demo itself:
tests/orchestration/test_dagster_dev.py, which runs it once for the README and the UI)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crm_pipelines.cli import app
from crm_pipelines.definitions import MATERIALIZE_ALL, defs
from crm_pipelines.enginy.schema import TABLES

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"DAGSTER_HOME", "ENGINY_DATABASE_URL", "CRM_PIPELINES_WAREHOUSE_URL",
                        "CRM_PIPELINES_WAREHOUSE_SCHEMA", "CRM_PIPELINES_CONFIG"}}
    env.update(extra)
    return env


def test_dagster_accepts_the_code_location() -> None:
    done = subprocess.run([str(BIN / "dagster"), "definitions", "validate", "-w", "workspace.yaml"], cwd=REPO,
                          env=_clean_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Validation successful" in done.stdout + done.stderr


def test_the_enginy_source_assets_are_in_the_graph_with_the_materialize_all_job() -> None:
    definitions = defs()
    keys = {key.to_user_string() for key in definitions.resolve_asset_graph().get_all_asset_keys()}
    assert {f"enginy_{t.name}" for t in TABLES} <= keys
    assert definitions.resolve_job_def(MATERIALIZE_ALL) is not None


@pytest.mark.parametrize("command", ["generate", "demo", "sandbox"])
def test_every_command_explains_itself_in_help(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output and len(result.output.splitlines()) > 8


def test_generate_writes_the_enginy_database_the_crm_side_and_the_labels(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["generate", "--contacts", "100", "--out", str(tmp_path)],
                                env={"ENGINY_DATABASE_URL": ""})
    assert result.exit_code == 0, result.output
    assert (tmp_path / "enginy.sqlite").exists()
    for name in ("users", "companies", "contacts"):
        assert (tmp_path / "crm" / f"{name}.parquet").exists()
    assert (tmp_path / "labels" / "contacts.parquet").exists()
    assert "100 contacts" in result.output


def test_generate_refuses_an_overlap_outside_zero_to_one(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["generate", "--overlap", "1.5", "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert "--overlap must be between 0 and 1" in result.output


def test_a_broken_integration_config_stops_the_code_location_with_the_fix(tmp_path: Path) -> None:
    bad = tmp_path / "team.yaml"
    bad.write_text("crm:\n  salesforce: {enabled: true}\n  hubspot: {enabled: true}\n")
    done = subprocess.run([str(BIN / "dagster"), "definitions", "validate", "-w", "workspace.yaml"], cwd=REPO,
                          env=_clean_env(CRM_PIPELINES_CONFIG=str(bad)), capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert f"{bad}: crm: salesforce and hubspot are both enabled" in done.stdout + done.stderr
