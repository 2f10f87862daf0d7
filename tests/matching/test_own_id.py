"""Our own Enginy id matches before the identifier rules (#23 item 9)."""

import pandas as pd
import pytest

from crm_pipelines.matching.engine import match
from crm_pipelines.matching.own_id import ENGINY_ID_KEY, carriers, matched_by_own_id
from crm_pipelines.matching.rules import LINKEDIN, NAME_COMPANY, Rule
from tests.export.test_export_end_to_end import pipeline  # noqa: F401 (a fixture)
from tests.pipeline import instance_in_memory, run_after_rollups


def test_a_crm_record_carrying_an_enginy_id_matches_that_record_whatever_the_rules_say() -> None:
    enginy = pd.DataFrame({"id": ["e1", "e2"], "first_name": ["Ann", "Bo"], "last_name": ["Lee", "Ng"],
                           "company_name": ["Acme", "Acme"], "linkedin_url": [None, None]})
    # Two CRM companies called Acme: no rule can tell which Ann is; the record our push made says so.
    crm = pd.DataFrame({"crm_id": ["c1", "c2", "c3"], "first_name": ["Ann", "Ann", "Bo"],
                        "last_name": ["Lee", "Lee", "Ng"], "company_name": ["Acme", "Acme", "Other"],
                        "linkedin_url": [None, None, None], "is_deleted": [False, False, False],
                        "raw": ['{"Enginy_Id__c": "e1"}', '{}', '{"Enginy_Id__c": null}'], "object": "contacts"})
    by_rules = match(Rule("linkedin_or_name_company", (LINKEDIN, NAME_COMPANY)), enginy, crm)
    assert by_rules["outcome"].tolist() == ["ambiguous", "new"]
    matches = matched_by_own_id(by_rules, carriers(crm, "Enginy_Id__c")).set_index("enginy_id")
    assert matches.loc["e1", ["outcome", "crm_id", "crm_object", "matched_by"]].tolist() == [
        "matched", "c1", "contacts", ENGINY_ID_KEY]
    assert matches.loc["e1", "n_candidates"] == 1 and matches.loc["e1", "candidates"] is None
    assert matches.loc["e2", "outcome"] == "new", "a record carrying no id is left to the rules"


def test_a_deleted_crm_record_carrying_an_enginy_id_matches_nothing() -> None:
    crm = pd.DataFrame({"crm_id": ["c1"], "is_deleted": [True], "raw": ['{"enginy_id": "e1"}']})
    assert carriers(crm, "enginy_id").empty


@pytest.mark.parametrize("pipeline", ["salesforce"], indirect=True)
def test_contacts_our_push_created_match_by_their_enginy_id_and_the_lead_batch_leaves_them(pipeline) -> None:
    """Contacts the first run created — some without a LinkedIn profile, at a company several CRM
    companies match — match on the next run by the Enginy id they carry, and the lead batch does
    not propose creating them as leads."""
    _, sandbox, warehouse, _ = pipeline
    # Every CRM account twice (a company several CRM companies match) and no LinkedIn profile in
    # Enginy: the people created at those companies are found by no rule on the next run.
    for n, account in enumerate(sandbox.ctx.store.records("salesforce", "Account")):
        sandbox.ctx.store.create("salesforce", "Account", f"001TW{n:013d}", dict(account.fields))
    contacts = warehouse.read_table("enginy_contacts")
    warehouse.write_table("enginy_contacts", contacts.assign(linkedin_url=None))
    with instance_in_memory() as instance:
        assert run_after_rollups(instance).success
        first = warehouse.read_table("crm_push_results").query("object == 'contacts' and status == 'created'")
        assert run_after_rollups(instance).success
    matches = warehouse.read_table("contact_matches").set_index("enginy_id")
    mine = matches.loc[first["enginy_id"].astype(str)]
    assert (mine["outcome"] == "matched").all() and (mine["crm_id"].tolist() == first["crm_id"].tolist())
    assert set(mine["matched_by"]) == {ENGINY_ID_KEY}
    contacts = contacts.assign(id=lambda f: f["id"].astype(str)).set_index("id")
    companies = warehouse.read_table("company_matches").set_index("enginy_id")["outcome"]
    hard = contacts.loc[first["enginy_id"].astype(str)]
    hard = hard[hard["company_id"].astype(str).map(companies).eq("ambiguous")]
    assert len(hard) > 0, "the data holds contacts no rule can find again"
    leads = warehouse.read_table("lead_export_batch").set_index("enginy_id")
    assert not leads.loc[first["enginy_id"].astype(str), "action"].eq("create").any()
