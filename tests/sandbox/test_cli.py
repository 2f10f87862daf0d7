"""`crm-pipelines sandbox` as a user starts it: seeded, with faults and settings from flags."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from hubspot import HubSpot
from hubspot.crm.owners import ApiException
from typer.testing import CliRunner

from crm_pipelines.cli import app
from crm_pipelines.crms.hubspot.emulator import ACCESS_TOKEN
from crm_pipelines.sandbox.server import free_port


def test_the_sandbox_command_serves_a_seeded_crm_with_the_faults_and_limits_given_as_flags(tmp_path: Path) -> None:
    generated = CliRunner().invoke(app, ["generate", "--contacts", "60", "--out", str(tmp_path)],
                                   env={"ENGINY_DATABASE_URL": ""})
    assert generated.exit_code == 0, generated.output
    port = free_port()
    fault = {"crm": "hubspot", "endpoint": "/crm/v3/owners/", "status": 503, "nth": 1}
    process = subprocess.Popen(
        [sys.executable, "-m", "crm_pipelines.cli", "sandbox", "--crm", "hubspot", "--port", str(port),
         "--seed-from", str(tmp_path / "crm"), "--tls-dir", str(tmp_path / "tls"),
         "--fault", json.dumps(fault), "--setting", "hubspot.burst_limit=5"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        base = f"https://127.0.0.1:{port}"
        bundle = str(tmp_path / "tls" / "ca-bundle.pem")
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{base}/_sandbox/stats", verify=bundle, timeout=2)
                break
            except (requests.ConnectionError, OSError):
                assert process.poll() is None and time.monotonic() < deadline, process.stdout.read()
                time.sleep(0.2)
        hubspot = HubSpot(access_token=ACCESS_TOKEN, host=base, ssl_ca_cert=bundle)
        with pytest.raises(ApiException) as exc:
            hubspot.crm.owners.owners_api.get_page()
        assert exc.value.status == 503
        assert hubspot.crm.owners.owners_api.get_page().results  # seeded owners; the fault hit once
        page = hubspot.crm.contacts.basic_api.get_page(limit=100)
        assert len(page.results) > 0
        assert page.results and requests.get(f"{base}/_sandbox/settings/hubspot", verify=bundle).json()[
            "burst_limit"] == 5
    finally:
        process.kill()
        process.wait(timeout=10)


def test_a_malformed_fault_flag_is_a_usage_error_that_shows_an_example() -> None:
    result = CliRunner().invoke(app, ["sandbox", "--fault", "{status: 503}"])
    assert result.exit_code == 2
    assert "is not a fault rule" in result.output and '"status": 503' in result.output


def test_a_setting_flag_without_a_crm_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["sandbox", "--setting", "burst_limit=5"])
    assert result.exit_code == 2 and "CRM.NAME=VALUE" in result.output
