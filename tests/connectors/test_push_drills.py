"""Fault drills for the push: a push killed between chunks or in the middle of one, and a CRM
answering 429 and 5xx, then run again — zero duplicates and zero rows lost, proven from the
sandbox's record history."""

from pathlib import Path

import pandas as pd
import pytest

from crm_pipelines.export.ledger import EXPORT_LEDGER, empty_ledger
from crm_pipelines.export.push import outcomes, run_push
from crm_pipelines.export.writes import Write
from crm_pipelines.resources.warehouse import LedgerTable, Warehouse
from crm_pipelines.sandbox.faults import FaultRule
from tests.connectors.test_push import CRMS, history

ROWS = 250


class Killed(Exception):
    """Stands for the push process dying at that point."""


@pytest.fixture(params=sorted(CRMS))
def crm(request, sandbox):
    return sandbox, CRMS[request.param]


def batch(spec, n: int = ROWS) -> pd.DataFrame:
    return pd.DataFrame({"enginy_id": [f"en-{i}" for i in range(n)], "action": "create", "crm_id": None,
                         "fields": [spec.person(i) for i in range(n)], "owner_id": None, "company_crm_id": None})


class Store:
    """The ledger table in a warehouse of its own, kept as the push asset keeps it."""

    def __init__(self, directory: Path) -> None:
        self.table = LedgerTable(Warehouse(url=f"duckdb:///{directory / 'wh.duckdb'}"), EXPORT_LEDGER)
        self.save = self.table.save

    @property
    def ledger(self) -> pd.DataFrame:
        return self.table.read()


def assert_exactly_once(sandbox, spec, n: int = ROWS) -> None:
    records = history(sandbox, spec)
    assert sorted(records) == sorted(f"en-{i}" for i in range(n)), "every row is in the CRM"
    assert all(ops.count("create") == 1 for ops in records.values()), "and none was created twice"


@pytest.mark.parametrize("when", ["before a chunk is sent", "after the CRM wrote, before the answer was recorded"])
def test_a_push_killed_mid_chunk_finishes_on_the_next_run_without_duplicates(crm, when, tmp_path) -> None:
    sandbox, spec = crm
    client = spec.resource(sandbox).client()
    store, calls = Store(tmp_path), {"n": 0}

    def dying_push(writes):
        calls["n"] += 1
        if calls["n"] == 2:
            if when.startswith("after"):
                client.push("contacts", writes)
            raise Killed()
        return client.push("contacts", writes)

    with pytest.raises(Killed):
        run_push(dying_push, "contacts", batch(spec), store.ledger, store.save, chunk=spec.ceiling)
    assert (store.ledger["status"] == "sent").sum() > 0, "the ledger knew what was in flight"
    again = run_push(lambda w: client.push("contacts", w), "contacts", batch(spec), store.ledger, store.save,
                     chunk=spec.ceiling)
    assert again.already_done == spec.ceiling, "the finished chunk was not sent again"
    assert_exactly_once(sandbox, spec)
    ended = outcomes(batch(spec), "contacts", again.ledger)
    assert set(ended["status"]) <= {"created", "updated"} and len(ended) == ROWS


def test_a_push_killed_after_every_chunk_still_ends_with_each_row_once(crm, tmp_path) -> None:
    sandbox, spec = crm
    client = spec.resource(sandbox).client()
    store = Store(tmp_path)
    for _ in range(10):
        def one_chunk_then_die(writes, sent=[]):
            if sent:
                raise Killed()
            sent.append(1)
            return client.push("contacts", writes)
        try:
            run_push(one_chunk_then_die, "contacts", batch(spec), store.ledger, store.save, chunk=spec.ceiling)
            break
        except Killed:
            continue
    assert_exactly_once(sandbox, spec)
    assert set(outcomes(batch(spec), "contacts", store.ledger)["status"]) == {"created"}


def test_throttling_and_server_errors_during_the_push_lose_nothing_and_double_nothing(crm, tmp_path) -> None:
    sandbox, spec = crm
    for status, nth in ((429, 1), (503, 2), (500, 4)):
        sandbox.ctx.faults.add(FaultRule(crm=spec.name, endpoint=spec.endpoint, status=status, retry_after=0, nth=nth))
    sandbox.ctx.faults.add(FaultRule(crm=spec.name, endpoint=spec.endpoint, kind="drop", nth=5))
    client = spec.resource(sandbox).client()
    store = Store(tmp_path)
    outcome = run_push(lambda w: client.push("contacts", w), "contacts", batch(spec), store.ledger, store.save,
                       chunk=spec.ceiling)
    assert sum(outcome.counts.values()) == ROWS and "failed" not in outcome.counts
    assert_exactly_once(sandbox, spec)


def test_rows_whose_retries_ran_out_are_sent_again_by_the_next_run(crm, tmp_path) -> None:
    sandbox, spec = crm
    sandbox.ctx.faults.add(FaultRule(crm=spec.name, endpoint=spec.endpoint, status=503, retry_after=0, times=6))
    client = spec.resource(sandbox).client()
    store = Store(tmp_path)
    first = run_push(lambda w: client.push("contacts", w), "contacts", batch(spec, 20), store.ledger, store.save,
                     chunk=spec.ceiling)
    assert first.counts == {"failed": 20}
    second = run_push(lambda w: client.push("contacts", w), "contacts", batch(spec, 20), store.ledger, store.save,
                      chunk=spec.ceiling)
    assert second.counts == {"created": 20}
    assert_exactly_once(sandbox, spec, 20)


@pytest.mark.parametrize("crm", ["salesforce"], indirect=True)
@pytest.mark.parametrize("save_anyway", [False, True])
def test_a_duplicate_warning_is_rejected_for_review_unless_the_integration_creates_anyway(crm, save_anyway) -> None:
    sandbox, spec = crm
    client = spec.resource(sandbox).client()
    client.push("contacts", [Write("a", "create", "en-a", {"LastName": "Lovelace", "Email": "ada@acme.com"})])
    twin = pd.DataFrame({"enginy_id": ["en-b"], "action": "create", "crm_id": None, "owner_id": None,
                         "company_crm_id": None, "fields": [{"LastName": "Byron", "Email": "ADA@acme.com"}]})
    outcome = run_push(lambda w: client.push("contacts", w), "contacts", twin, empty_ledger(), lambda l: None,
                       chunk=200, save_anyway_on_duplicates=save_anyway)
    ended = outcomes(twin, "contacts", outcome.ledger).iloc[0]
    if save_anyway:
        assert ended["status"] == "created"
    else:
        assert ended["status"] == "rejected" and "DUPLICATES_DETECTED" in ended["reason"]
