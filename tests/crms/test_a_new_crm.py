"""An eighth CRM is a folder and one registration: Toybook (tests/crms/toy/: facts, client,
emulator, example config) is registered through CRM_PIPELINES_CRMS — in the package it would be a
line of crms/registry.py — and passes the conformance suite every CRM passes, in a process of
its own, with its integration config accepted and its emulator served by the sandbox."""

import os
import subprocess
import sys
from pathlib import Path

from crm_pipelines.crms.registry import EXTRA_CRMS_ENV

REPO = Path(__file__).resolve().parents[2]
TOYBOOK = "tests.crms.toy.facts:FACTS"


def _run(*args: str, extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, env={**os.environ, EXTRA_CRMS_ENV: extra},
                          capture_output=True, text=True, timeout=300)


def test_a_crm_registered_from_its_folder_passes_the_conformance_suite() -> None:
    run = _run("-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/crms/test_conformance.py", "-k", "toybook",
               extra=TOYBOOK)
    assert run.returncode == 0, run.stdout[-3000:]
    contract = (REPO / "tests/crms/test_conformance.py").read_text().count("\ndef test_")
    assert f"{contract} passed" in run.stdout, run.stdout[-1000:]


def test_a_registration_that_names_no_new_crm_is_refused_with_the_fix() -> None:
    run = _run("-c", "import crm_pipelines.crms.registry", extra="crm_pipelines.crms.salesforce.facts:FACTS")
    assert run.returncode != 0
    assert f"{EXTRA_CRMS_ENV}: crm_pipelines.crms.salesforce.facts:FACTS is not the CrmFacts of a new CRM" in run.stderr
    assert "fix:" in run.stderr
