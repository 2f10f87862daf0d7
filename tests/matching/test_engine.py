"""The matching engine on small frames built inline: outcomes, groups, the company a contact
matches through, custom rules over raw CRM fields, leads, incremental batches, CRM duplicates
and near misses."""

import json

import pandas as pd

from crm_pipelines.config import CompanyIdentifier, ContactIdentifier, FieldCondition
from crm_pipelines.matching import near_miss
from crm_pipelines.matching.engine import CrmIndex, company_links, fill_rates, match
from crm_pipelines.matching.rules import Rule, company_rule, contact_rule, custom_groups

RULE = contact_rule(ContactIdentifier(rule="linkedin_or_name_company"))


def enginy(*rows):
    columns = ["id", "first_name", "last_name", "company_name", "linkedin_url", "company_id"]
    return pd.DataFrame([dict(zip(columns, r)) for r in rows], columns=columns)


def crm(*rows, **extra):
    columns = ["crm_id", "first_name", "last_name", "company_name", "linkedin_url", "account_id", "object"]
    frame = pd.DataFrame([dict(zip(columns, r)) for r in rows], columns=columns)
    frame["object"] = frame["object"].fillna("contacts")
    return frame.assign(**extra)


def outcome(result: pd.DataFrame, enginy_id: str) -> dict:
    return result.set_index("enginy_id").loc[enginy_id].to_dict()


def test_one_crm_record_is_matched_none_is_new_several_are_ambiguous():
    result = match(RULE, enginy(
        ("e1", "Ada", "Lovelace", "Engines Ltd", None, None),
        ("e2", "Grace", "Hopper", "Navy", None, None),
        ("e3", "Alan", "Turing", "Bletchley", "https://www.linkedin.com/in/alan-turing", None),
    ), crm(
        ("c1", "ADA", "LOVELACE", "Engines Limited", None, None, None),
        ("c2", "Alan", "Turing", "Bletchley", None, None, None),
        ("c3", "A.", "Turing", "Other", "https://uk.linkedin.com/in/alan-turing/", None, None),
    ))
    assert outcome(result, "e1") == {"outcome": "matched", "crm_id": "c1", "crm_object": "contacts",
                                          "candidates": None, "n_candidates": 1, "rule": "linkedin_or_name_company",
                                          "matched_by": "first_name + last_name + company_name"}
    assert outcome(result, "e2")["outcome"] == "new" and outcome(result, "e2")["crm_id"] is None
    e3 = outcome(result, "e3")
    assert (e3["outcome"], e3["crm_id"], e3["candidates"], e3["n_candidates"]) == ("ambiguous", None, "c2, c3", 2)
    assert e3["matched_by"] == "linkedin_url | first_name + last_name + company_name"


def test_blank_identifiers_never_match_and_deleted_crm_records_are_ignored():
    result = match(RULE, enginy(("e1", None, None, None, None, None), ("e2", "Ada", "Lovelace", "Engines", None, None)),
                   crm(("c1", None, None, None, None, None, None), ("c2", "Ada", "Lovelace", "Engines", None, None, None),
                       is_deleted=[False, True]))
    assert result["outcome"].tolist() == ["new", "new"]


def test_a_contact_matches_through_the_company_already_matched():
    """The CRM holds the company under another name; the companies were matched by domain."""
    companies = match(company_rule(CompanyIdentifier(rule="domain")),
                      pd.DataFrame({"id": ["co1"], "name": ["Acme"], "domain": ["acme.com"], "website": [None]}),
                      pd.DataFrame({"crm_id": ["acct1"], "name": ["Initech Holdings"], "domain": ["https://www.acme.com/"]}))
    assert company_links(companies).to_dict() == {"co1": "acct1"}
    people = enginy(("e1", "Ada", "Lovelace", "Acme", None, "co1"))
    in_crm = crm(("c1", "Ada", "Lovelace", "Initech Holdings", None, "acct1", None))
    assert outcome(match(RULE, people, in_crm), "e1")["outcome"] == "new"
    linked = outcome(match(RULE, people, in_crm, company_links(companies)), "e1")
    assert (linked["outcome"], linked["crm_id"]) == ("matched", "c1")
    assert linked["matched_by"] == "first_name + last_name + company_name (through the matched company)"


def test_an_enginy_company_without_a_domain_is_known_by_its_website():
    result = match(company_rule(CompanyIdentifier(rule="domain")),
                   pd.DataFrame({"id": ["co1"], "name": ["Acme"], "domain": [None], "website": ["https://acme.com"]}),
                   pd.DataFrame({"crm_id": ["acct1"], "name": ["Acme"], "domain": ["acme.com"]}))
    assert result["crm_id"].tolist() == ["acct1"]


def test_custom_groups_are_an_or_of_ands_over_any_field_including_raw_crm_fields():
    rule = contact_rule(ContactIdentifier(rule="custom", custom=[
        [FieldCondition(enginy="email", crm="raw.Email")],
        [FieldCondition(enginy="last_name", crm="last_name"), FieldCondition(enginy="phone", crm="raw.MobilePhone")],
    ]))
    people = pd.DataFrame({"id": ["e1", "e2", "e3"], "email": ["Ada@Engines.com", None, None],
                           "last_name": ["Lovelace", "Hopper", "Hopper"],
                           "phone": [None, "+1 415 555 0100", "+1 415 555 0199"]})
    in_crm = pd.DataFrame({"crm_id": ["c1", "c2"], "last_name": ["Lovelace", "Hopper"], "raw": [
        {"Email": "ada@engines.com"}, json.dumps({"MobilePhone": "+1 (415) 555-0100"})]})  # as stored: JSON text
    result = match(rule, people, in_crm).set_index("enginy_id")
    assert result.loc["e1", ["outcome", "crm_id", "matched_by"]].tolist() == ["matched", "c1", "email=raw.Email"]
    assert result.loc["e2", ["outcome", "crm_id", "matched_by"]].tolist() == [
        "matched", "c2", "last_name + phone=raw.MobilePhone"]
    assert result.loc["e3", "outcome"] == "new"  # the last name alone is half an AND-group


def test_a_person_held_as_a_lead_and_as_a_contact_is_ambiguous_with_both_objects_named():
    result = match(RULE, enginy(("e1", "Ada", "Lovelace", "Engines", None, None)),
                   crm(("003A", "Ada", "Lovelace", "Engines", None, None, "contacts"),
                       ("00QB", "Ada", "Lovelace", "Engines", None, None, "leads")))
    row = outcome(result, "e1")
    assert (row["outcome"], row["candidates"], row["crm_object"]) == ("ambiguous", "003A, 00QB", "contacts, leads")


def test_matching_a_batch_of_changed_records_gives_what_the_full_match_gives_for_them(world):
    index = CrmIndex(RULE, world.crm_people)
    full = index.match(world.enginy_contacts)
    changed = world.enginy_contacts.sample(50, random_state=3)
    batch = index.match(changed)
    expected = full.set_index("enginy_id").loc[changed["id"]].reset_index()
    pd.testing.assert_frame_equal(batch, expected)


def test_crm_records_sharing_any_key_form_one_duplicate_group():
    groups = CrmIndex(RULE, crm(
        ("c3", "Ada", "Lovelace", "Engines", "https://www.linkedin.com/in/ada", None, None),
        ("c1", "Augusta", "King", "Other", "linkedin.com/in/ada/", None, None),  # same profile as c3
        ("c2", "ADA", "Lovelace", "Engines Ltd", None, None, None),  # same name and company as c3
        ("c4", "Grace", "Hopper", "Navy", None, None, None),
    )).duplicates()
    assert groups["crm_id"].tolist() == ["c1", "c2", "c3"]
    assert set(groups["duplicate_group"]) == {"c1"} and set(groups["group_size"]) == {3}
    by = groups.set_index("crm_id")["matched_by"]
    assert by["c1"] == "linkedin_url" and by["c2"] == "first_name + last_name + company_name"
    assert by["c3"] == "linkedin_url | first_name + last_name + company_name"


def test_near_misses_are_proposed_with_a_score_and_never_applied():
    index = CrmIndex(RULE, crm(
        ("c1", "Jonathan", "Smith", "ACME Corp", None, None, None),
        ("c2", "Mary", "Smith", "Acme", None, None, None),  # a colleague: another first name
        ("c3", "Jon", "Smith", "Initech", None, None, None),  # a namesake elsewhere
        ("c4", "Jonathan", "Doe", "Globex", "https://www.linkedin.com/in/jonathan-doe-2", None, None),
    ), also=near_miss.FIELDS)
    result = near_miss.add_near_misses(index, index.match(enginy(
        ("e1", "Jon", "Smith", "Acme", None, None),
        ("e2", "Jon", "Doe", "Globex", "https://www.linkedin.com/in/jon-doe-1", None),  # another profile
    )))
    e1, e2 = outcome(result, "e1"), outcome(result, "e2")
    assert (e1["outcome"], e1["crm_id"], e1["near_miss_crm_id"]) == ("new", None, "c1")
    assert 0.9 <= e1["near_miss_score"] < 1
    assert e1["near_miss_detail"].startswith("first_name 0.8")
    assert e2["outcome"] == "new" and e2["near_miss_crm_id"] is None


def test_fill_rates_count_records_with_a_usable_identifier_on_each_side():
    rates = fill_rates(Rule("linkedin", custom_groups([[FieldCondition(enginy="linkedin_url", crm="linkedin_url")]])),
                       enginy(("e1", "A", "B", "C", "https://www.linkedin.com/in/a", None),
                              ("e2", "A", "B", "C", "https://example.com/a", None),
                              ("e3", "A", "B", "C", None, None)),
                       crm(("c1", "A", "B", "C", "linkedin.com/in/a", None, None)))
    assert rates.to_dict("records") == [
        {"side": "Enginy", "identifier": "linkedin_url", "records": 3, "filled": 1},
        {"side": "CRM", "identifier": "linkedin_url", "records": 1, "filled": 1}]
