"""Push results tell the truth (#23 item 8): a create whose answer was lost is created, and the
writes a stopped push left without an answer are settled by the next run — unit rules on inline
frames, a push through the sandbox, and the code location's job."""

import pandas as pd
import pytest

from crm_pipelines.export.in_doubt import records_written, settled, superseded
from crm_pipelines.export.ledger import EXPORT_LEDGER, empty_ledger
from crm_pipelines.export.push import outcomes, run_push
from crm_pipelines.export.writes import Write, WriteResult
from crm_pipelines.sandbox.faults import FaultRule
from tests.connectors.test_push import crm, history  # noqa: F401 (crm: a fixture)
from tests.export.test_export_end_to_end import CONTACT_OBJECT, pipeline  # noqa: F401 (pipeline: a fixture)
from tests.pipeline import instance_in_memory, run_after_rollups

CONTACT_CREATES = "/services/data/{version}/composite/sobjects/{sobject}/{field}"


def test_a_create_answered_updated_is_created_unless_an_earlier_write_of_ours_finished_on_its_record() -> None:
    writes = [Write("w1", "create", "e1", {}), Write("w2", "create", "e2", {}), Write("w3", "update", "e3", {}, "c3")]
    answers = [WriteResult("w1", "updated", "c1"), WriteResult("w2", "updated", "c2"),
               WriteResult("w3", "updated", "c3")]
    assert [r.status for r in settled(writes, answers, existed={"e2"})] == ["created", "updated", "updated"]


def test_records_written_are_those_an_earlier_batchs_write_finished_on() -> None:
    entries = pd.DataFrame({"write_id": ["old1", "old2", "old3", "mine"], "enginy_id": ["e1", "e2", "e3", "e4"],
                            "status": ["created", "sent", "updated", "created"]})
    assert sorted(records_written(entries, ["mine"])) == ["e1", "e3"]


def test_unanswered_writes_of_an_older_batch_are_superseded_once_the_new_batch_ends_their_record() -> None:
    entries = pd.DataFrame({"write_id": ["old1", "old2", "old3", "mine"], "enginy_id": ["e1", "e2", "e3", "e4"],
                            "crm_id": [None, "c2", None, None], "status": ["sent", "failed", "sent", "sent"],
                            "action": ["create", "update", "create", "create"]})
    ended = pd.DataFrame({"enginy_id": ["e1", "e2", "e3", "e4"], "action": ["create", "skip", "create", "create"],
                          "status": ["created", "skipped", "failed", "pending"], "crm_id": ["c1", "c2", None, None]})
    rows = superseded(entries, ["mine"], ended, "run-2").set_index("write_id")
    # e3's new write failed: its old entry waits; "mine" is the batch's own, sent again by it.
    assert sorted(rows.index) == ["old1", "old2"] and set(rows["status"]) == {"superseded"}
    assert rows.loc["old1", "crm_id"] == "c1"
    assert rows.loc["old1", "error"] == ("no answer was recorded (the push was stopped); superseded by batch run-2, "
                                         "whose create of this record ended created")
    assert rows.loc["old2", "error"].startswith("its retries ran out; superseded by batch run-2, whose skip")


def test_an_unanswered_create_whose_record_carries_its_enginy_id_is_created() -> None:
    entries = pd.DataFrame({"write_id": ["old1", "old2"], "enginy_id": ["e1", "e2"], "crm_id": [None, None],
                            "status": ["sent", "sent"], "action": ["create", "create"]})
    ended = pd.DataFrame({"enginy_id": ["e1", "e2"], "action": ["update", "update"],
                          "status": ["updated", "updated"], "crm_id": ["c1", "c2"]})
    # e1's record was found by the Enginy id it carries; e2's by an identifier rule (someone else's).
    rows = superseded(entries, [], ended, "run-2", carried=["e1"]).set_index("write_id")
    assert rows.loc["old1", "status"] == "created" and rows.loc["old1", "crm_id"] == "c1"
    assert rows.loc["old2", "status"] == "superseded"


def test_a_create_whose_answer_was_lost_after_the_crm_wrote_is_recorded_created(crm) -> None:
    """The connection drops after the CRM wrote the first call's records; the retry finds them by
    their Enginy id and the CRM answers updated — our own lost send created them."""
    sandbox, spec = crm
    sandbox.ctx.faults.add(FaultRule(crm=spec.name, endpoint=spec.endpoint, kind="drop", nth=1))
    batch = pd.DataFrame({"batch_id": "b1", "enginy_id": [f"en-{i}" for i in range(5)], "action": "create",
                          "crm_id": None, "reason": None, "fields": [spec.person(i) for i in range(5)]})
    client = spec.resource(sandbox).client()
    saved: list[pd.DataFrame] = []
    outcome = run_push(lambda writes: client.push("contacts", writes), "contacts", batch, empty_ledger(),
                       saved.append, chunk=spec.ceiling)
    assert sandbox.ctx.faults.rules()[0].hits == 1
    assert all(ops == ["create", "update"] for ops in history(sandbox, spec).values()), "sent twice, made once"
    assert outcome.counts == {"created": 5}
    assert set(outcome.ledger["status"]) == {"created"}
    assert set(outcomes(batch, "contacts", outcome.ledger)["status"]) == {"created"}


@pytest.mark.parametrize("pipeline", ["salesforce"], indirect=True)
def test_creates_whose_answer_was_lost_are_reported_created_by_crm_push_results(pipeline) -> None:
    name, sandbox, warehouse, _ = pipeline
    before = len(sandbox.ctx.store.records(name, CONTACT_OBJECT[name]))
    sandbox.ctx.faults.add(FaultRule(crm=name, endpoint=CONTACT_CREATES, method="PATCH", kind="drop", nth=2))
    with instance_in_memory() as instance:
        assert run_after_rollups(instance).success
    assert sandbox.ctx.faults.rules()[0].hits == 1
    results = warehouse.read_table("crm_push_results").query("object == 'contacts'")
    created = results[results["action"].eq("create")]
    assert len(created) and set(created["status"]) == {"created"}
    assert len(sandbox.ctx.store.records(name, CONTACT_OBJECT[name])) == before + len(created)
    ledger = warehouse.read_table(EXPORT_LEDGER).query("object == 'contacts' and action == 'create'")
    assert set(ledger["status"]) == {"created"} and len(ledger) == len(created)


@pytest.mark.parametrize("pipeline", ["salesforce"], indirect=True)
def test_a_stopped_pushs_unanswered_writes_are_settled_by_the_next_run(pipeline) -> None:
    """The first push dies on its first upsert call (companies go first; an error nothing retries):
    that chunk stays sent. The next run builds new batches (new write ids) that create those
    records, and the old entries are superseded by their outcome — no entry is left sent."""
    name, sandbox, warehouse, _ = pipeline
    sandbox.ctx.faults.add(FaultRule(crm=name, endpoint=CONTACT_CREATES, method="PATCH", status=400, nth=1,
                                     body=[{"errorCode": "MALFORMED_QUERY", "message": "injected"}]))
    with instance_in_memory() as instance:
        assert not run_after_rollups(instance).success
        stopped = warehouse.read_table(EXPORT_LEDGER)
        left = stopped[stopped["status"].eq("sent")]
        assert len(left) > 0 and "create" in set(left["action"]), "the push died with a chunk in flight"
        assert run_after_rollups(instance).success
    ledger = warehouse.read_table(EXPORT_LEDGER).set_index("write_id")
    assert "sent" not in set(ledger["status"])
    old = ledger.loc[left["write_id"]]
    assert set(old["status"]) == {"superseded"} and old["crm_id"].notna().all()
    creates = left[left["action"].eq("create")]
    assert all(str(e).endswith("create of this record ended created") for e in old.loc[creates["write_id"], "error"])
    results = warehouse.read_table("crm_push_results").set_index(["object", "enginy_id"])
    assert set(results.loc[list(zip(creates["object"], creates["enginy_id"])), "status"]) == {"created"}


@pytest.mark.parametrize("pipeline", ["salesforce"], indirect=True)
def test_a_create_that_landed_before_the_push_stopped_is_recorded_created_by_the_next_run(pipeline) -> None:
    """The first upsert call writes and its answer is lost; the retry meets an error nothing
    retries, so the push stops with that chunk sent. The next run's snapshot holds those records
    with their Enginy ids: matched by them, their old creates are created, not superseded."""
    name, sandbox, warehouse, _ = pipeline
    sandbox.ctx.faults.add(FaultRule(crm=name, endpoint=CONTACT_CREATES, method="PATCH", kind="drop", nth=1))
    sandbox.ctx.faults.add(FaultRule(crm=name, endpoint=CONTACT_CREATES, method="PATCH", status=400, nth=2,
                                     body=[{"errorCode": "MALFORMED_QUERY", "message": "injected"}]))
    with instance_in_memory() as instance:
        assert not run_after_rollups(instance).success
        stopped = warehouse.read_table(EXPORT_LEDGER)
        left = stopped[stopped["status"].eq("sent") & stopped["action"].eq("create")]
        assert len(left) > 0, "the push stopped with creates in flight"
        assert run_after_rollups(instance).success
    ledger = warehouse.read_table(EXPORT_LEDGER).set_index("write_id").loc[left["write_id"]]
    assert set(ledger["status"]) == {"created"} and ledger["crm_id"].notna().all()
    matches = warehouse.read_table("company_matches")
    found = matches[matches["enginy_id"].astype(str).isin(left["enginy_id"].astype(str))]
    assert set(found["matched_by"]) == {"enginy_id"}
