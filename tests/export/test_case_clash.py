"""#23 item 6 against the sandbox: Salesforce external ids and Dataverse alternate keys compare
without case, so an upsert of Enginy id ``BAD_CASE_ID`` lands on the record of ``bad_case_id``
and overwrites that person, reported "updated". The batch rejects such a pair before the push."""

from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from crm_pipelines.crms.registry import client_environment, emulator, example_config
from crm_pipelines.enginy.database import write_tables
from crm_pipelines.enginy.generator import generate_frames
from crm_pipelines.resources.warehouse import Warehouse
from tests.export.test_export_end_to_end import CONTACT_OBJECT, ENGINY_KEY
from tests.pipeline import instance_in_memory, run

FIRST_NAME = {"salesforce": "FirstName", "dynamics": "firstname"}


def renamed(frames: dict[str, pd.DataFrame], old: str, new: str) -> dict[str, pd.DataFrame]:
    """The Enginy tables with contact ``old`` known as ``new`` wherever a table names it."""
    out = {}
    for name, frame in frames.items():
        frame = frame.copy()
        for column in ("id", "contact_id") if name == "contacts" else ("contact_id",):
            if column in frame:
                frame[column] = frame[column].replace(old, new)
        out[name] = frame
    return out


@pytest.mark.slow
@pytest.mark.parametrize("crm", sorted(FIRST_NAME))
def test_an_enginy_id_differing_only_in_case_is_rejected_and_does_not_overwrite_the_other_person(
        crm, sandbox, tmp_path: Path, monkeypatch) -> None:
    data = generate_frames(60, seed=21)
    emulator(crm).seed(sandbox.ctx, data.crm)
    # The first contact is Enginy's only (the CRM's people start after the Enginy-only ones): created.
    first = data.enginy["contacts"]["id"].iloc[0]
    enginy = renamed(data.enginy, first, "bad_case_id")
    enginy_url = f"sqlite:///{tmp_path / 'enginy.sqlite'}"
    write_tables(enginy_url, enginy)
    env = {"CRM_PIPELINES_CONFIG": str(example_config(crm)), "ENGINY_DATABASE_URL": enginy_url,
           "CRM_PIPELINES_WAREHOUSE_URL": f"duckdb:///{tmp_path / 'wh.duckdb'}", **client_environment(crm, sandbox)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    def people(enginy_id: str) -> list[dict]:
        """The CRM's contacts whose Enginy id is ``enginy_id`` in any letter case."""
        return [r.fields for r in sandbox.ctx.store.records(crm, CONTACT_OBJECT[crm])
                if str(r.fields.get(ENGINY_KEY[crm]) or "").casefold() == enginy_id.casefold()]

    with instance_in_memory() as instance:
        assert run(instance, dg.AssetSelection.all()).success
        [created] = people("bad_case_id")
        name = created[FIRST_NAME[crm]]
        # Another person arrives in Enginy under the same id in capitals.
        contacts = enginy["contacts"]
        other = contacts.iloc[[1]].assign(id="BAD_CASE_ID", first_name="Bea", last_name="Upper",
                                          email="bea.upper@capitals.com", linkedin_url=None,
                                          updated_at=datetime.now(timezone.utc))
        write_tables(enginy_url, {**enginy, "contacts": pd.concat([contacts, other], ignore_index=True)})
        second = run(instance, dg.AssetSelection.all())
    assert second.success, [e.message for e in second.all_events if e.is_failure]

    [held] = people("bad_case_id")
    assert held[ENGINY_KEY[crm]] == "bad_case_id" and held[FIRST_NAME[crm]] == name != "Bea", "not overwritten"
    batch = Warehouse(url=env["CRM_PIPELINES_WAREHOUSE_URL"]).read_table("contact_export_batch")
    clash = batch[batch["enginy_id"].isin(["bad_case_id", "BAD_CASE_ID"])].set_index("enginy_id")
    assert clash.loc["BAD_CASE_ID", "action"] == "reject"
    reason = clash.loc["BAD_CASE_ID", "reason"]
    assert "'BAD_CASE_ID'" in reason and "'bad_case_id'" in reason and "letter case" in reason
