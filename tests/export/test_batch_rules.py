"""The rules a batch passes through after it is built: the CRM record an Enginy record already is,
the people another object's batch owns, one create per person or company, one update per CRM
record — each keeps one export from writing the same CRM record twice."""

from datetime import datetime, timezone

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from crm_pipelines.config import ContactIdentifier
from crm_pipelines.export.batch import BATCH_COLUMNS
from crm_pipelines.export.batch_rules import (held_after_duplicate_refusal, identity_keys, known_by_enginy_id,
                                              known_in_the_other_object, leave_to_other_object, match_outcomes,
                                              matched_as_the_same, one_create_per_person, one_update_per_crm_record)
from crm_pipelines.matching.rules import contact_rule

FIELD = "Enginy_Id__c"
PERSON_OF_E1 = "the same person as Enginy record e1, which is created instead"
COMPANY_OF_E1 = "the same company as Enginy record e1, which is created instead"
EARLY, LATE = datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2026, 6, 1, tzinfo=timezone.utc)


def matches(*rows, crm_object=False) -> pd.DataFrame:
    columns = ["enginy_id", "outcome", "crm_id"] + (["crm_object"] if crm_object else [])
    return pd.DataFrame(list(rows), columns=columns)


def crm(*rows) -> pd.DataFrame:
    """CRM snapshot rows (crm_id, raw, is_deleted)."""
    return pd.DataFrame(list(rows), columns=["crm_id", "raw", "is_deleted"])


def batch(*rows) -> pd.DataFrame:
    """Batch rows (enginy_id, action, crm_id, reason), in build_batch's columns."""
    return pd.DataFrame([{"enginy_id": e, "action": a, "crm_id": c, "fields": {}, "diff": [], "owner_id": None,
                          "company_crm_id": None, "company_link": None, "unlink_company_id": None, "reason": r,
                          "writeback": {}} for e, a, c, r in rows], columns=BATCH_COLUMNS)


def plain(frame: pd.DataFrame) -> list[list]:
    """The rows as lists, a missing value as None whatever pandas made of it."""
    return [[None if pd.isna(v) else v for v in row] for row in frame.itertuples(index=False)]


def decided(frame: pd.DataFrame) -> list[tuple]:
    """(enginy_id, action, crm_id, reason) per row."""
    return [tuple(row) for row in plain(frame[["enginy_id", "action", "crm_id", "reason"]])]


def test_match_outcomes_are_the_three_columns_the_batch_builder_reads_with_enginy_ids_as_text() -> None:
    table = pd.DataFrame({"enginy_id": [101, 102], "outcome": ["matched", "new"], "crm_id": ["003A", None],
                          "crm_object": ["contacts", None], "rule": ["email", None]})
    outcomes = match_outcomes(table)
    assert list(outcomes.columns) == ["enginy_id", "outcome", "crm_id"]
    assert plain(outcomes) == [["101", "matched", "003A"], ["102", "new", None]]


def test_a_crm_record_carrying_an_enginy_id_is_that_enginy_record_whatever_the_rules_say() -> None:
    found = known_by_enginy_id(matches(("e1", "new", None), ("e2", "matched", "003OTHER")),
                               crm(("003E1", {FIELD: "e1"}, False), ("003E2", {FIELD: "e2"}, False)), FIELD)
    assert plain(found) == [["e1", "matched", "003E1"], ["e2", "matched", "003E2"]]


def test_with_no_crm_records_the_matches_are_as_the_rules_made_them() -> None:
    given = matches(("e1", "new", None), ("e2", "ambiguous", None))
    found = known_by_enginy_id(given, crm(), FIELD)
    assert plain(found) == [["e1", "new", None], ["e2", "ambiguous", None]]


def test_a_deleted_crm_record_carrying_an_enginy_id_is_not_that_record() -> None:
    found = known_by_enginy_id(matches(("e1", "new", None)), crm(("003GONE", {FIELD: "e1"}, True)), FIELD)
    assert plain(found) == [["e1", "new", None]]


def test_crm_records_without_the_enginy_id_field_or_their_raw_values_own_nothing() -> None:
    found = known_by_enginy_id(matches(("e1", "new", None)),
                               crm(("003A", {FIELD: None}, False), ("003B", {"Email": "e1"}, False),
                                   ("003C", None, False)), FIELD)
    assert plain(found) == [["e1", "new", None]]


def test_enginy_ids_the_matches_did_not_have_are_added_as_matched_in_order() -> None:
    found = known_by_enginy_id(matches(("e1", "new", None)),
                               crm(("003E3", {FIELD: "e3"}, False), ("003E2", {FIELD: "e2"}, False)), FIELD)
    assert plain(found) == [["e1", "new", None], ["e2", "matched", "003E2"], ["e3", "matched", "003E3"]]
    assert list(found.index) == [0, 1, 2]


def test_a_crm_snapshot_without_is_deleted_counts_every_record_as_live() -> None:
    snapshot = pd.DataFrame({"crm_id": ["001A"], "raw": [{FIELD: "e1"}]})
    found = known_by_enginy_id(matches(("e1", "new", None)), snapshot, FIELD)
    assert plain(found) == [["e1", "matched", "001A"]]


def test_the_given_matches_are_not_changed() -> None:
    given = matches(("e1", "new", None))
    known_by_enginy_id(given, crm(("003E1", {FIELD: "e1"}, False)), FIELD)
    assert plain(given) == [["e1", "new", None]]


def test_a_person_who_is_a_lead_is_left_to_the_lead_batch_by_the_contact_batch() -> None:
    people = matches(("e1", "matched", "00QLEAD", "leads"), ("e2", "matched", "003CONT", "contacts"),
                     ("e3", "new", None, None), crm_object=True)
    left = leave_to_other_object(batch(("e1", "update", "00QLEAD", None), ("e2", "update", "003CONT", None),
                                       ("e3", "create", None, None)), people, "contacts")
    assert decided(left) == [
        ("e1", "skip", "00QLEAD", "already in the CRM as one of its leads; export it to leads to update it"),
        ("e2", "update", "003CONT", None), ("e3", "create", None, None)]


def test_a_person_who_is_a_contact_is_left_to_the_contact_batch_by_the_lead_batch() -> None:
    people = matches((7, "matched", "003CONT", "contacts"), (8, "matched", "00QLEAD", "leads"), crm_object=True)
    left = leave_to_other_object(batch(("7", "update", "003CONT", None), ("8", "update", "00QLEAD", None)),
                                 people, "leads")
    assert decided(left) == [
        ("7", "skip", "003CONT", "already in the CRM as one of its contacts; export it to contacts to update it"),
        ("8", "update", "00QLEAD", None)]


def test_a_person_an_earlier_export_created_as_a_contact_is_left_to_contacts_by_the_lead_batch() -> None:
    # e1 has no identifier the rules match by: the contact the push created for it is found by its Enginy id.
    people = matches(("e1", "new", None, None), ("e2", "new", None, None), ("e3", "matched", "00QLEAD", "leads"),
                     crm_object=True)
    contacts = crm(("003MADE", {FIELD: "e1"}, False), ("003GONE", {FIELD: "e2"}, True),
                   ("003ALSO", {FIELD: "e3"}, False))
    leads_here = known_by_enginy_id(match_outcomes(people), crm(), FIELD)
    rows = known_in_the_other_object(people, leads_here, contacts, "contacts", FIELD)
    left = leave_to_other_object(batch(("e1", "create", None, None), ("e2", "create", None, None),
                                       ("e3", "update", "00QLEAD", None)), rows, "leads")
    assert decided(left) == [
        ("e1", "skip", None, "already in the CRM as one of its contacts; export it to contacts to update it"),
        ("e2", "create", None, None),  # its contact was deleted
        ("e3", "update", "00QLEAD", None)]  # a lead holds it: it stays the lead batch's


def test_an_ambiguous_match_in_the_other_object_is_not_left_to_it() -> None:
    people = matches(("e1", "ambiguous", None, "leads"), crm_object=True)
    left = leave_to_other_object(batch(("e1", "skip", None, "ambiguous match: several CRM records; review it")),
                                 people, "contacts")
    assert decided(left) == [("e1", "skip", None, "ambiguous match: several CRM records; review it")]


def test_the_companies_batch_leaves_nothing_to_another_object() -> None:
    companies = matches(("e1", "matched", "001A", "leads"), crm_object=True)
    left = leave_to_other_object(batch(("e1", "update", "001A", None)), companies, "companies")
    assert decided(left) == [("e1", "update", "001A", None)]


def test_matches_without_a_crm_object_leave_nothing_to_another_object() -> None:
    left = leave_to_other_object(batch(("e1", "update", "003A", None)), matches(("e1", "matched", "003A")),
                                 "contacts")
    assert decided(left) == [("e1", "update", "003A", None)]


def companies(*rows) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=["id", "name", "domain"])


def contacts(*rows) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=["id", "email", "linkedin_url"])


def each_created(records: pd.DataFrame, obj: str, rule=None) -> pd.DataFrame:
    """one_create_per_person over a batch in which every record is a create."""
    return one_create_per_person(batch(*[(e, "create", None, None) for e in records["id"]]), records, obj,
                                 identity_keys(records, obj, rule))


def test_the_first_create_of_a_company_domain_is_kept_and_the_later_ones_skipped_naming_it() -> None:
    records = companies(("e1", "Acme", "acme.com"), ("e2", "Acme Corp", "https://www.acme.com/about"),
                        ("e3", "ACME Inc.", "ACME.COM"))
    once = each_created(records, "companies")
    assert decided(once) == [("e1", "create", None, None), ("e2", "skip", None, COMPANY_OF_E1),
                             ("e3", "skip", None, COMPANY_OF_E1)]
    assert once["match_key"].tolist() == ["acme.com", "acme.com", "acme.com"]
    assert plain(once[["same_as"]]) == [[None], ["e1"], ["e1"]], "the push links e2's and e3's contacts to e1's"


@pytest.mark.parametrize("obj, records, keys, third", [
    ("companies", companies(("e1", "Acme Inc.", None), ("e2", "The ACME Corporation", None), ("e3", "Acme", "acme.io")),
     ["acme", "acme", "acme.io"], ("e3", "create", None, None)),
    ("contacts", contacts(("e1", "ada@acme.com", "https://www.linkedin.com/in/ada-lovelace/"),
                          ("e2", "ada.l@gmail.com", "linkedin.com/in/Ada-Lovelace?trk=x"),
                          ("e3", "ada@acme.com", None)),
     ["in/ada-lovelace", "in/ada-lovelace", "ada@acme.com"], ("e3", "skip", None, PERSON_OF_E1)),
], ids=["a company by its domain, else its name", "a person by their LinkedIn or their email"])
def test_records_are_one_by_their_normalised_identifiers(obj, records, keys, third) -> None:
    once = each_created(records, obj)
    assert decided(once) == [("e1", "create", None, None),
                             ("e2", "skip", None, COMPANY_OF_E1 if obj == "companies" else PERSON_OF_E1), third]
    assert once["match_key"].tolist() == keys


def test_a_person_without_linkedin_is_keyed_by_their_normalised_email() -> None:
    records = contacts(("e1", " Ada@Acme.com", None), ("e2", "ada@acme.com", ""))
    once = each_created(records, "leads")
    assert decided(once) == [
        ("e1", "create", None, None),
        ("e2", "skip", None, PERSON_OF_E1)]


def test_people_are_one_by_the_matching_rule_too_and_the_one_changed_last_is_created() -> None:
    """Two Enginy contacts with the same name at the same company and different profiles are one
    person to linkedin_or_name_company: two creates would be a duplicate the CRM refuses, then a
    match the next run. The one changed last creates, as it speaks for the record afterwards."""
    records = pd.DataFrame([("e1", "Jon", "Russo", "Hanogal & Co S.r.l.", "linkedin.com/in/jon-russo-1", None, EARLY),
                            ("e2", "JON", "Russo", "Hanogal", "linkedin.com/in/jon-russo-2", "jon@hanogal.it", LATE),
                            ("e3", "Jon", "Russo", "Other Co", None, None, EARLY)],
                           columns=["id", "first_name", "last_name", "company_name", "linkedin_url", "email",
                                    "updated_at"])
    once = each_created(records, "contacts", contact_rule(ContactIdentifier()))
    assert decided(once) == [("e1", "skip", None, "the same person as Enginy record e2, which is created instead"),
                             ("e2", "create", None, None), ("e3", "create", None, None)]
    assert decided(each_created(records, "contacts")) == [
        ("e1", "create", None, None), ("e2", "create", None, None), ("e3", "create", None, None)], \
        "without the rule, nothing says they are one"


def test_namesakes_at_two_enginy_companies_matched_to_one_crm_company_are_one_person() -> None:
    """Matching reads a contact's company name through the CRM company its Enginy company matched:
    Mia at "Ronnetor Capital" and Mia at "Ronñetor Partners", both matched to account 001R, are one
    person to it — so one create, not a second the CRM refuses and a match a run later."""
    records = pd.DataFrame([("e1", "Mia", "Schröder", "Ronnetor Capital", "co1", "linkedin.com/in/mia-1", EARLY),
                            ("e2", "Mia", "Schroder", "Ronñetor Partners", "co2", "linkedin.com/in/mia-2", LATE),
                            ("e3", "Mia", "Schröder", "Other Co", "co3", None, EARLY)],
                           columns=["id", "first_name", "last_name", "company_name", "company_id", "linkedin_url",
                                    "updated_at"])
    batch_rows = batch(*[(e, "create", None, None) for e in records["id"]])
    rule = contact_rule(ContactIdentifier())
    companies = pd.Series({"co1": "001R", "co2": "001R", "co3": "001S"})
    once = one_create_per_person(batch_rows.copy(), records, "contacts", identity_keys(records, "contacts", rule,
                                                                                        companies))
    assert decided(once) == [("e1", "skip", None, "the same person as Enginy record e2, which is created instead"),
                             ("e2", "create", None, None), ("e3", "create", None, None)]
    unlinked = one_create_per_person(batch_rows.copy(), records, "contacts", identity_keys(records, "contacts", rule))
    assert decided(unlinked)[0] == ("e1", "create", None, None), "without the company matches, the names differ"


def test_records_sharing_keys_are_one_transitively() -> None:
    # e1 and e2 share a profile, e2 and e3 an email: one person.
    records = contacts(("e1", None, "linkedin.com/in/ada"), ("e2", "ada@acme.com", "linkedin.com/in/ada"),
                       ("e3", "ada@acme.com", None), ("e4", "bob@acme.com", None))
    once = each_created(records, "contacts")
    assert decided(once) == [("e1", "create", None, None), ("e2", "skip", None, PERSON_OF_E1),
                             ("e3", "skip", None, PERSON_OF_E1), ("e4", "create", None, None)]


def test_a_record_matching_nothing_is_the_crm_record_another_one_with_it_matched() -> None:
    """e2 is e1 by email and e1 matched 003A: e2 updates 003A too (one of them speaks for it)
    rather than creating a duplicate. e4 is both e3 (003B) and e5 (003C): no one record, it stays new;
    e6 is e7, matched as a lead, which lends no record to the contact batch."""
    records = contacts(("e1", "ada@acme.com", None), ("e2", "ada@acme.com", "linkedin.com/in/ada"),
                       ("e3", "bob@acme.com", "linkedin.com/in/bob"), ("e4", "bob@acme.com", "linkedin.com/in/rob"),
                       ("e5", None, "linkedin.com/in/rob"), ("e6", "eve@acme.com", None), ("e7", "eve@acme.com", None))
    found = matched_as_the_same(matches(("e1", "matched", "003A"), ("e2", "new", None), ("e3", "matched", "003B"),
                                        ("e4", "new", None), ("e5", "matched", "003C"), ("e6", "new", None),
                                        ("e7", "matched", "00QD")),
                                identity_keys(records, "contacts"), pd.Series(["e7"]))
    assert plain(found) == [["e1", "matched", "003A"], ["e2", "matched", "003A"], ["e3", "matched", "003B"],
                            ["e4", "new", None], ["e5", "matched", "003C"], ["e6", "new", None],
                            ["e7", "matched", "00QD"]]


def test_creates_with_no_identifier_are_left_alone() -> None:
    records = contacts(("e1", None, None), ("e2", "not an email", None))
    once = each_created(records, "contacts")
    assert decided(once) == [("e1", "create", None, None), ("e2", "create", None, None)]
    assert once["match_key"].isna().tolist() == [True, True]


def test_a_create_of_someone_already_in_the_crm_is_skipped_naming_them_and_updates_are_left_as_they_are() -> None:
    records = contacts(("e1", "ada@acme.com", None), ("e2", "ada@acme.com", None), ("e3", "ada@acme.com", None))
    once = one_create_per_person(batch(("e1", "update", "003A", None),
                                       ("e2", "skip", "003A", "nothing to change"),
                                       ("e3", "create", None, None)), records, "contacts",
                                 identity_keys(records, "contacts"))
    assert decided(once) == [("e1", "update", "003A", None), ("e2", "skip", "003A", "nothing to change"),
                             ("e3", "skip", None, "the same person as Enginy record e1, in the CRM as 003A")]
    assert plain(once[["same_as"]]) == [[None], [None], ["e1"]]


def changed(*rows) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=["id", "updated_at"])


def spoken_for(crm_id: str, enginy_id: str) -> str:
    return f"CRM record {crm_id} also matches Enginy record {enginy_id}, changed more recently, which speaks for it"


def test_the_update_of_the_enginy_record_changed_last_is_kept_and_the_others_skipped_naming_it() -> None:
    records = changed(("e1", EARLY), ("e2", LATE), ("e3", datetime(2026, 3, 1, tzinfo=timezone.utc)))
    once = one_update_per_crm_record(batch(("e1", "update", "003A", None), ("e2", "update", "003A", None),
                                           ("e3", "update", "003A", None)), records)
    assert decided(once) == [("e1", "skip", "003A", spoken_for("003A", "e2")), ("e2", "update", "003A", None),
                             ("e3", "skip", "003A", spoken_for("003A", "e2"))]


def test_enginy_records_changed_at_the_same_time_are_decided_by_the_lowest_enginy_id() -> None:
    records = changed(("e2", LATE), ("e1", LATE))
    once = one_update_per_crm_record(batch(("e2", "update", "003A", None), ("e1", "update", "003A", None)), records)
    assert decided(once) == [
        ("e2", "skip", "003A", spoken_for("003A", "e1")),
        ("e1", "update", "003A", None)]


def test_timestamps_given_as_text_are_compared_as_times() -> None:
    records = changed(("e1", "2026-06-01T00:00:00Z"), ("e2", "2026-01-01T00:00:00+00:00"))
    once = one_update_per_crm_record(batch(("e1", "update", "001A", None), ("e2", "update", "001A", None)), records)
    assert decided(once) == [
        ("e1", "update", "001A", None),
        ("e2", "skip", "001A", spoken_for("001A", "e1"))]


def test_a_latest_record_with_nothing_to_change_still_speaks_for_its_crm_record() -> None:
    records = changed(("e1", EARLY), ("e2", LATE))
    once = one_update_per_crm_record(batch(("e1", "update", "003A", None),
                                           ("e2", "skip", "003A", "nothing to change")), records)
    assert decided(once) == [
        ("e1", "skip", "003A", spoken_for("003A", "e2")),
        ("e2", "skip", "003A", "nothing to change")]


def test_rows_that_are_not_updates_are_left_as_they_are_and_never_speak_for_the_record() -> None:
    records = changed(("e1", EARLY), ("e2", datetime(2026, 2, 1, tzinfo=timezone.utc)), ("e3", LATE), ("e4", LATE))
    once = one_update_per_crm_record(batch(("e1", "skip", "003A", "nothing to change"),
                                           ("e2", "update", "003A", None),
                                           ("e3", "reject", "003A", "Title: the CRM does not let this field be "
                                                                    "updated"),
                                           ("e4", "skip", "003A", "already in the CRM and the sync mode is "
                                                                  "create_only")), records)
    assert decided(once) == [
        ("e1", "skip", "003A", "nothing to change"), ("e2", "update", "003A", None),
        ("e3", "reject", "003A", "Title: the CRM does not let this field be updated"),
        ("e4", "skip", "003A", "already in the CRM and the sync mode is create_only")]


def test_updates_of_different_crm_records_are_each_decided_alone() -> None:
    records = changed(("e1", EARLY), ("e2", LATE), ("e3", LATE), ("e4", EARLY))
    once = one_update_per_crm_record(batch(("e1", "update", "003A", None), ("e2", "update", "003A", None),
                                           ("e3", "update", "003B", None), ("e4", "update", "003B", None)), records)
    assert decided(once) == [
        ("e1", "skip", "003A", spoken_for("003A", "e2")),
        ("e2", "update", "003A", None), ("e3", "update", "003B", None),
        ("e4", "skip", "003B", spoken_for("003B", "e3"))]


def test_nothing_changes_when_no_crm_record_is_matched_twice() -> None:
    given = batch(("e1", "update", "003A", None), ("e2", "update", "003B", None), ("e3", "create", None, None),
                  ("e4", "skip", "003A", "the matched CRM record 003A is deleted in the CRM"))
    before = given.copy()
    once = one_update_per_crm_record(given, changed(("e1", EARLY), ("e2", LATE), ("e3", LATE), ("e4", LATE)))
    assert_frame_equal(once, before)


def refusals(*rows) -> pd.DataFrame:
    """Ledger refusals (enginy_id, refused at), as LedgerTable.refused_as_duplicates reads them."""
    return pd.DataFrame([{"enginy_id": e, "error_code": "DUPLICATES_DETECTED", "error": "Use one of these records?",
                          "updated_at": at} for e, at in rows])


def test_a_create_the_crm_refused_as_a_duplicate_waits_until_its_enginy_record_changes() -> None:
    middle = datetime(2026, 3, 1, tzinfo=timezone.utc)
    records = changed(("e1", EARLY), ("e2", LATE), ("e3", EARLY), ("e4", EARLY))
    held = held_after_duplicate_refusal(
        batch(("e1", "create", None, None), ("e2", "create", None, None), ("e3", "create", None, None),
              ("e4", "update", "003D", None)),
        records, refusals(("e1", middle), ("e2", middle), ("e4", middle)))
    [e1, e2, e3, e4] = decided(held)
    # e1 has not changed since the CRM refused it: rejected, naming the refusal and what sends it again.
    assert e1[:3] == ("e1", "reject", None)
    assert e1[3] == ("the CRM refused its create as a duplicate (DUPLICATES_DETECTED: Use one of these records?) on "
                     "2026-03-01 00:00 UTC; it is sent again once the Enginy record changes (or launch with "
                     "resend_refused_duplicates)")
    # e2 changed after the refusal, e3 was never refused, e4 is an update: each as it was.
    assert [e2, e3, e4] == [("e2", "create", None, None), ("e3", "create", None, None), ("e4", "update", "003D", None)]


def test_without_refusals_the_batch_is_as_it_was() -> None:
    rows = batch(("e1", "create", None, None))
    assert decided(held_after_duplicate_refusal(rows, changed(("e1", EARLY)), refusals())) == [
        ("e1", "create", None, None)]



def test_a_record_refused_again_after_its_change_is_held_by_the_latest_refusal() -> None:
    again = datetime(2026, 7, 1, tzinfo=timezone.utc)  # after LATE, the Enginy record's change
    held = held_after_duplicate_refusal(batch(("e1", "create", None, None)), changed(("e1", LATE)),
                                        refusals(("e1", again), ("e1", EARLY)))
    assert decided(held)[0][1] == "reject" and "on 2026-07-01 00:00 UTC" in decided(held)[0][3]
