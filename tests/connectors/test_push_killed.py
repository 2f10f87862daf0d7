"""The push process killed for real (SIGKILL) in the middle of a batch, then run again: every row
ends in the CRM exactly once. The push runs in a child process against the sandbox of this one;
its ledger is the warehouse table the push asset keeps (a DuckDB file the killed child was writing)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crm_pipelines.export.ledger import EXPORT_LEDGER
from crm_pipelines.resources.warehouse import Warehouse
from crm_pipelines.sandbox.faults import FaultRule
from tests.connectors.test_push import CRMS, history

REPO = Path(__file__).resolve().parents[2]
ROWS = 450
HANG_MS = 3_000
CHILD = """
import sys
import pandas as pd
from crm_pipelines.export.ledger import EXPORT_LEDGER
from crm_pipelines.export.push import run_push
from crm_pipelines.resources.warehouse import LedgerTable, Warehouse
from tests.connectors.test_push import CRMS

class Sandbox:
    base_url = sys.argv[2]
    class tls:
        ca_bundle = sys.argv[3]

spec = CRMS[sys.argv[1]]
# The ledger table as the push asset keeps it, in a DuckDB file the killed process was writing.
ledger = LedgerTable(Warehouse(url=f"duckdb:///{sys.argv[4]}"), EXPORT_LEDGER)
client = spec.resource(Sandbox).client()
batch = pd.DataFrame({"enginy_id": [f"en-{i}" for i in range(%(rows)d)], "action": "create", "crm_id": None,
                      "fields": [spec.person(i) for i in range(%(rows)d)], "owner_id": None, "company_crm_id": None})
outcome = run_push(lambda w: client.push("contacts", w), "contacts", batch, ledger.read(), ledger.save,
                   chunk=spec.ceiling)
print(outcome.counts)
""" % {"rows": ROWS}


@pytest.fixture(params=sorted(CRMS))
def crm(request, sandbox):
    return sandbox, CRMS[request.param]


def start(sandbox, spec, ledger: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CHILD, spec.name, sandbox.base_url, str(sandbox.tls.ca_bundle),
                             str(ledger)], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def write_calls(sandbox, spec) -> int:
    return sum(n for (c, _, e), n in sandbox.ctx.stats.calls.items() if c == spec.name and e == spec.endpoint)


@pytest.mark.slow
@pytest.mark.parametrize("kill_on_call", [2, 3])
def test_a_push_killed_with_sigkill_mid_batch_completes_on_the_next_run_exactly_once(crm, kill_on_call,
                                                                                     tmp_path: Path) -> None:
    sandbox, spec = crm
    ledger = tmp_path / "wh.duckdb"
    # The chosen write call hangs; the child is killed while it waits for the answer.
    sandbox.ctx.faults.add(FaultRule(crm=spec.name, endpoint=spec.endpoint, kind="latency", latency_ms=HANG_MS,
                                     nth=kill_on_call))
    child = start(sandbox, spec, ledger)
    deadline = time.monotonic() + 60
    while write_calls(sandbox, spec) < kill_on_call:
        assert child.poll() is None and time.monotonic() < deadline, child.stdout.read()
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    sandbox.ctx.faults.clear()
    held = Warehouse(url=f"duckdb:///{ledger}").read_table(EXPORT_LEDGER)
    in_flight = min(spec.ceiling, ROWS - (kill_on_call - 1) * spec.ceiling)
    assert (held["status"] == "sent").sum() == in_flight, "the ledger knew which chunk was in flight"
    again = start(sandbox, spec, ledger)
    output, _ = again.communicate(timeout=120)
    assert again.returncode == 0, output
    # The killed child's hung call still lands when its latency ends: a late write, which must
    # find the records the re-run made and update them, not create them again.
    time.sleep(max(0.0, HANG_MS / 1000 + 0.5 - (time.monotonic() - killed_at)))
    records = history(sandbox, spec)
    assert sorted(records) == sorted(f"en-{i}" for i in range(ROWS))
    assert all(ops.count("create") == 1 for ops in records.values())
    final = Warehouse(url=f"duckdb:///{ledger}").read_table(EXPORT_LEDGER)
    assert set(final["status"]) <= {"created", "updated"} and len(final) == ROWS


BULK_CHILD = """
import sys
import pandas as pd
from crm_pipelines.crms.salesforce.client import SalesforceResource
from crm_pipelines.export.ledger import EXPORT_LEDGER
from crm_pipelines.export.push import run_push
from crm_pipelines.resources.warehouse import LedgerTable, Warehouse
from tests.connectors.test_push import CRMS

spec = CRMS["salesforce"]
ledger = LedgerTable(Warehouse(url=f"duckdb:///{sys.argv[2]}"), EXPORT_LEDGER)
client = SalesforceResource(login_url=sys.argv[1], client_id="sandbox-client", client_secret="sandbox-secret",
                            bulk_push_threshold=100).client()
batch = pd.DataFrame({"enginy_id": [f"en-{i}" for i in range(%(rows)d)], "action": "create", "crm_id": None,
                      "fields": [spec.person(i) for i in range(%(rows)d)], "owner_id": None, "company_crm_id": None})
# As crm_push_results pushes through a CRM with a bulk API.
outcome = run_push(lambda w, job_started: client.push("contacts", w, job_started), "contacts", batch, ledger.read(),
                   ledger.save, chunk=client.writes_per_push,
                   resume=lambda job_id, w: client.bulk_job_results("contacts", job_id, w))
print("sent", outcome.sent, "counts", outcome.counts)
""" % {"rows": ROWS}
JOB = "/services/data/{version}/jobs/ingest"


def job_calls(sandbox, method: str, endpoint: str) -> int:
    return sum(n for (c, m, e), n in sandbox.ctx.stats.calls.items()
               if c == "salesforce" and m == method and e == endpoint)


@pytest.mark.slow
@pytest.mark.parametrize("hang", ["upload", "wait"])
def test_a_bulk_push_killed_mid_job_is_resumed_from_the_job_recorded_in_the_ledger(sandbox, hang, tmp_path) -> None:
    """Killed while its data is uploaded (the job never ran: it is aborted and the writes go again)
    or while it waits for the job (the job ran: its results are read, nothing is sent again)."""
    spec, ledger = CRMS["salesforce"], tmp_path / "wh.duckdb"
    endpoint, method = ((JOB + "/{job_id}/batches", "PUT") if hang == "upload" else (JOB + "/{job_id}", "GET"))
    sandbox.ctx.faults.add(FaultRule(crm="salesforce", endpoint=endpoint, method=method, kind="latency",
                                     latency_ms=HANG_MS, nth=1))

    def start() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", BULK_CHILD, sandbox.base_url, str(ledger)], cwd=REPO,
                                env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    child = start()
    deadline = time.monotonic() + 60
    while job_calls(sandbox, method, endpoint) < 1:
        assert child.poll() is None and time.monotonic() < deadline, child.stdout.read()
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    child.wait(timeout=10)
    sandbox.ctx.faults.clear()
    held = Warehouse(url=f"duckdb:///{ledger}").read_table(EXPORT_LEDGER)
    assert (held["status"] == "sent").all() and held["job_id"].nunique() == 1 and held["job_id"].notna().all(), \
        "the job's id was in the ledger before its data was uploaded"

    again = start()
    output, _ = again.communicate(timeout=120)
    assert again.returncode == 0, output
    time.sleep(max(0.0, HANG_MS / 1000 + 0.5 - (time.monotonic() - killed_at)))  # the hung call lands, late
    if hang == "wait":
        assert f"sent 0 counts {{'created': {ROWS}}}" in output, output
        assert job_calls(sandbox, "POST", JOB) == 1, "the re-run read the job's results rather than send again"
    else:
        assert f"sent {ROWS} " in output, output
        assert job_calls(sandbox, "POST", JOB) == 2 and job_calls(sandbox, "PUT", JOB + "/{job_id}/batches") == 2
    records = history(sandbox, spec)
    assert sorted(records) == sorted(f"en-{i}" for i in range(ROWS))
    assert all(ops == ["create"] for ops in records.values()), "each record written once, by one job"
    final = Warehouse(url=f"duckdb:///{ledger}").read_table(EXPORT_LEDGER)
    assert set(final["status"]) == {"created"} and len(final) == ROWS
