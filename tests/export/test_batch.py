"""Export batches: each mapping option, sync mode, owner rule and value coercion decides the
exact write, or the reason there is none."""

import json
from datetime import datetime, timezone

import pandas as pd
import pytest

from crm_pipelines.config import EngagementMapping, EnginyFieldMapping, FixedValueMapping, ManualExportMapping
from crm_pipelines.export.associations import link_created_companies
from crm_pipelines.export.batch import Launch, Owners, build_batch
from crm_pipelines.export.gates import schema_gate
from crm_pipelines.export.values import FieldSpec, Refused, coerce
from crm_pipelines.resources.warehouse import parse_json_columns

SCHEMA = {
    "FirstName": FieldSpec("FirstName", "string", length=40),
    "Title": FieldSpec("Title", "string"),
    "Email": FieldSpec("Email", "email"),
    "Phone": FieldSpec("Phone", "phone"),
    "LeadSource": FieldSpec("LeadSource", "picklist", options=("Web", "Enginy_Outbound"),
                            option_labels=("Web", "Enginy Outbound")),
    "Employees": FieldSpec("Employees", "int"),
    "Stage__c": FieldSpec("Stage__c", "string"),
    "Engaged__c": FieldSpec("Engaged__c", "string"),
    "Sequence__c": FieldSpec("Sequence__c", "string"),
    "CreatedDate": FieldSpec("CreatedDate", "datetime", createable=False, updateable=False),
}
EARLY, LATE = datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2026, 6, 1, tzinfo=timezone.utc)


def enginy(**overrides) -> dict:
    return {"id": "e1", "first_name": "Ada", "job_title": "CTO", "email": "ada@acme.com", "phone": None,
            "owner_user_id": "u1", "updated_at": LATE, **overrides}


def crm_record(crm_id="c1", modified=EARLY, owner="005OWNER", **raw) -> dict:
    return {"crm_id": crm_id, "last_modified": modified, "owner_id": owner, "raw": raw}


def one(records, matches, crm, mappings, launch=Launch(), **kw) -> dict:
    batch = build_batch(pd.DataFrame(records), pd.DataFrame(matches, columns=["enginy_id", "outcome", "crm_id"]),
                        pd.DataFrame(crm, columns=["crm_id", "last_modified", "owner_id", "raw"]), mappings, SCHEMA,
                        launch, **kw)
    assert len(batch) == len(records)
    row = batch.iloc[0].to_dict()
    # The JSON text the warehouse stores.
    return {**row, **{column: json.loads(row[column]) for column in ("fields", "diff", "writeback")}}


def field(enginy_field, crm_field, option="enginy_overwrites_crm"):
    return EnginyFieldMapping(type="enginy_field", enginy_field=enginy_field, crm_field=crm_field, option=option)


MATCHED = [("e1", "matched", "c1")]


def test_a_batch_with_nothing_to_export_still_passes_the_schema_gate() -> None:
    # An incremental run where no company changed builds an empty company batch; it must not stop the run.
    batch = build_batch(pd.DataFrame(columns=["id", "first_name", "updated_at"]),
                        pd.DataFrame(columns=["enginy_id", "outcome", "crm_id"]),
                        pd.DataFrame(columns=["crm_id", "last_modified", "owner_id", "raw"]),
                        [field("first_name", "FirstName")], SCHEMA, Launch())
    batch = parse_json_columns(batch, ("fields",))  # as the gate reads it back
    assert batch.empty and schema_gate(batch).passed, schema_gate(batch).details


def test_a_new_record_is_a_create_with_every_mapped_value_and_its_diff() -> None:
    row = one([enginy()], [], [], [field("first_name", "FirstName"), field("job_title", "Title"),
                                   FixedValueMapping(type="fixed_value", value="Web", crm_field="LeadSource")])
    assert row["action"] == "create" and row["crm_id"] is None
    assert row["fields"] == {"FirstName": "Ada", "Title": "CTO", "LeadSource": "Web"}
    assert [d["field"] for d in row["diff"]] == ["FirstName", "Title", "LeadSource"]


def test_an_update_writes_only_the_fields_that_change() -> None:
    row = one([enginy()], MATCHED, [crm_record(FirstName="Ada", Title="Engineer")],
              [field("first_name", "FirstName"), field("job_title", "Title")])
    assert row["action"] == "update" and row["crm_id"] == "c1"
    assert row["fields"] == {"Title": "CTO"}
    assert row["diff"] == [{"field": "Title", "crm_value": "Engineer", "new_value": "CTO",
                            "rule": "enginy_overwrites_crm"}]


def test_the_diff_is_the_json_the_warehouse_stores_for_values_of_every_kind() -> None:
    # Text is turned to JSON by DuckDB, numbers and mixed columns by the warehouse's own encoder:
    # either way the stored diff reads back as the values the CRM holds and the export writes.
    records = [enginy(id="e1", first_name='Ada "the first"\nLovelace', employees="1,200"),
               enginy(id="e2", first_name="Grace", employees=None)]
    matches = [("e1", "matched", "c1"), ("e2", "matched", "c2")]
    crm = [crm_record("c1", FirstName=None, Employees=12), crm_record("c2", FirstName="G.", Employees=40)]
    batch = build_batch(pd.DataFrame(records), pd.DataFrame(matches, columns=["enginy_id", "outcome", "crm_id"]),
                        pd.DataFrame(crm, columns=["crm_id", "last_modified", "owner_id", "raw"]),
                        [field("first_name", "FirstName"), field("employees", "Employees")], SCHEMA,
                        Launch(owner_id="005NEW", overwrite_owner=True))
    rule = "enginy_overwrites_crm"
    owner = {"field": "owner", "crm_value": "005OWNER", "new_value": "005NEW", "rule": "chosen at launch"}
    assert [json.loads(d) for d in batch["diff"]] == [
        [{"field": "FirstName", "crm_value": None, "new_value": 'Ada "the first"\nLovelace', "rule": rule},
         {"field": "Employees", "crm_value": 12, "new_value": 1200, "rule": rule}, owner],
        [{"field": "FirstName", "crm_value": "G.", "new_value": "Grace", "rule": rule}, owner]]


def test_nothing_to_change_is_a_skip_with_that_reason() -> None:
    row = one([enginy()], MATCHED, [crm_record(FirstName="Ada")], [field("first_name", "FirstName")])
    assert (row["action"], row["reason"]) == ("skip", "nothing to change")


def test_sync_if_empty_writes_only_where_the_crm_has_no_value() -> None:
    mappings = [field("job_title", "Title", "sync_if_empty")]
    assert one([enginy()], MATCHED, [crm_record(Title="Engineer")], mappings)["action"] == "skip"
    assert one([enginy()], MATCHED, [crm_record(Title=None)], mappings)["fields"] == {"Title": "CTO"}


def test_crm_overwrites_enginy_never_writes_and_sends_the_crm_value_back() -> None:
    row = one([enginy()], MATCHED, [crm_record(Title="Engineer")], [field("job_title", "Title", "crm_overwrites_enginy")])
    assert row["fields"] == {} and row["writeback"] == {"job_title": "Engineer"}


@pytest.mark.parametrize("enginy_time, crm_time, wins", [(LATE, EARLY, "enginy"), (EARLY, LATE, "crm")])
def test_bidirectional_fields_go_to_the_side_changed_last(enginy_time, crm_time, wins) -> None:
    row = one([enginy(updated_at=enginy_time)], MATCHED, [crm_record(modified=crm_time, Title="Engineer")],
              [field("job_title", "Title", "bidirectional")])
    if wins == "enginy":
        assert row["fields"] == {"Title": "CTO"} and row["writeback"] == {}
    else:
        assert row["fields"] == {} and row["writeback"] == {"job_title": "Engineer"}


def test_a_deactivated_mapping_is_never_written() -> None:
    row = one([enginy()], [], [], [field("first_name", "FirstName"), field("job_title", "Title", "deactivated")])
    assert row["fields"] == {"FirstName": "Ada"}


def test_manual_export_fields_take_the_value_given_at_launch_and_engagement_its_own() -> None:
    mappings = [ManualExportMapping(type="manual_export", crm_field="Stage__c"),
                EngagementMapping(type="engagement", crm_field="Engaged__c", value="Contacted by Enginy")]
    row = one([enginy()], [], [], mappings, Launch(manual_values={"Stage__c": "Q3 outbound"}))
    assert row["fields"] == {"Stage__c": "Q3 outbound", "Engaged__c": "Contacted by Enginy"}
    assert "Stage__c" not in one([enginy()], [], [], mappings)["fields"], "not given at launch: not written"


def test_campaign_properties_go_to_their_mapped_fields() -> None:
    rollups = pd.DataFrame({"sequence_status": ["Ongoing"]}, index=["e1"])
    row = one([enginy()], MATCHED, [crm_record()], [], campaign_values=rollups,
              campaign_mapping={"sequence_status": "Sequence__c"})
    assert row["fields"] == {"Sequence__c": "Ongoing"}


@pytest.mark.parametrize("mode, outcome, action", [
    ("upsert", "new", "create"), ("upsert", "matched", "update"), ("update_only", "new", "skip"),
    ("update_only", "matched", "update"), ("create_only", "new", "create"), ("create_only", "matched", "skip")])
def test_sync_modes(mode, outcome, action) -> None:
    matches = [("e1", outcome, "c1" if outcome == "matched" else None)]
    row = one([enginy()], matches, [crm_record(Title="x")], [field("job_title", "Title")], Launch(sync_mode=mode))
    assert row["action"] == action


def test_an_ambiguous_match_is_never_written() -> None:
    row = one([enginy()], [("e1", "ambiguous", None)], [], [field("job_title", "Title")])
    assert row["action"] == "skip" and "ambiguous" in row["reason"]


def test_a_value_the_crm_would_refuse_rejects_the_row_with_the_reason_and_the_batch_goes_on() -> None:
    records = [enginy(email="not-an-email"), enginy(id="e2")]
    batch = build_batch(pd.DataFrame(records), pd.DataFrame(columns=["enginy_id", "outcome", "crm_id"]),
                        pd.DataFrame(columns=["crm_id", "last_modified", "owner_id", "raw"]),
                        [field("email", "Email")], SCHEMA, Launch())
    assert batch["action"].tolist() == ["reject", "create"]
    assert "not an email address" in batch.iloc[0]["reason"]


def test_enginy_ids_differing_only_in_case_are_rejected_before_the_crm_merges_them() -> None:
    records = [enginy(id="bad_case_id"), enginy(id="BAD_CASE_ID", first_name="Bea"), enginy(id="e3")]
    batch = build_batch(pd.DataFrame(records), pd.DataFrame(columns=["enginy_id", "outcome", "crm_id"]),
                        pd.DataFrame(columns=["crm_id", "last_modified", "owner_id", "raw"]),
                        [field("first_name", "FirstName")], SCHEMA, Launch())
    assert batch["action"].tolist() == ["reject", "reject", "create"]
    assert "'bad_case_id' differs from 'BAD_CASE_ID' only in letter case" in batch.iloc[0]["reason"]
    assert batch.iloc[1]["fields"] in (None, "{}") or json.loads(batch.iloc[1]["fields"]) == {}


def test_with_neutralize_formulas_free_text_a_sheet_would_run_is_quoted_and_phones_are_not() -> None:
    records = [enginy(job_title='=HYPERLINK("http://evil.example","Click")', phone="+44 20 7946 0958"),
               enginy(id="e2", job_title="+cmd|' /C calc'!A0"), enginy(id="e3", job_title="Head of Sales")]
    mappings = [field("job_title", "Title"), field("phone", "Phone")]

    def build(launch: Launch) -> pd.DataFrame:
        return build_batch(pd.DataFrame(records), pd.DataFrame(columns=["enginy_id", "outcome", "crm_id"]),
                           pd.DataFrame(columns=["crm_id", "last_modified", "owner_id", "raw"]), mappings, SCHEMA,
                           launch)
    fields = [json.loads(f) for f in build(Launch(neutralize_formulas=True))["fields"]]
    assert [f["Title"] for f in fields] == ['\'=HYPERLINK("http://evil.example","Click")',
                                            "'+cmd|' /C calc'!A0", "Head of Sales"]
    assert fields[0]["Phone"] == "+44 20 7946 0958"
    assert json.loads(build(Launch())["fields"].iloc[0])["Title"].startswith("=HYPERLINK"), "off by default"


def test_picklists_take_internal_values_and_an_unambiguous_label() -> None:
    spec = SCHEMA["LeadSource"]
    assert coerce(spec, "Enginy_Outbound") == "Enginy_Outbound"
    assert coerce(spec, "enginy outbound") == "Enginy_Outbound"
    with pytest.raises(Refused, match="not one of the allowed values: Web, Enginy_Outbound"):
        coerce(spec, "Cold call")


def test_values_are_coerced_to_the_described_types() -> None:
    assert coerce(SCHEMA["Employees"], "1,200") == 1200
    with pytest.raises(Refused):
        coerce(SCHEMA["Employees"], "12.5")
    with pytest.raises(Refused, match="holds 40"):
        coerce(SCHEMA["FirstName"], "x" * 41)
    assert coerce(FieldSpec("D", "date"), "2026-03-04T10:00:00Z") == "2026-03-04"
    assert coerce(FieldSpec("B", "boolean"), "yes") is True


def test_a_read_only_field_in_the_mapping_rejects_the_row() -> None:
    row = one([enginy()], [], [], [FixedValueMapping(type="fixed_value", value="2026-01-01", crm_field="CreatedDate")])
    assert row["action"] == "reject" and "new record" in row["reason"]


OWNERS = Owners(user_mapping={"u1": "005MAPPED"}, enginy_user_emails={"u2": "Rep@Corp.com"},
                crm_user_by_email={"rep@corp.com": "005BYEMAIL"}, default_owner="005DEFAULT")


@pytest.mark.parametrize("enginy_owner, expected, rule", [
    ("u1", "005MAPPED", "users mapping"), ("u2", "005BYEMAIL", "same email"), ("u3", "005DEFAULT", "default owner")])
def test_owner_of_a_create_by_users_mapping_then_email_then_default(enginy_owner, expected, rule) -> None:
    row = one([enginy(owner_user_id=enginy_owner)], [], [], [], owners=OWNERS)
    assert row["owner_id"] == expected and row["diff"][-1]["rule"] == rule


def test_the_launch_owner_replaces_an_existing_owner_only_when_asked() -> None:
    keep = one([enginy()], MATCHED, [crm_record()], [], Launch(owner_id="005LAUNCH"), owners=OWNERS)
    assert keep["owner_id"] is None and keep["action"] == "skip"
    replace = one([enginy()], MATCHED, [crm_record()], [], Launch(owner_id="005LAUNCH", overwrite_owner=True))
    assert replace["owner_id"] == "005LAUNCH" and replace["action"] == "update"
    new = one([enginy()], [], [], [], Launch(owner_id="005LAUNCH"), owners=OWNERS)
    assert new["owner_id"] == "005LAUNCH"


@pytest.mark.parametrize("spec, held, given", [
    (FieldSpec("Opted__c", "boolean"), "true", True),  # HubSpot answers booleans as text
    (FieldSpec("Met__c", "datetime"), "2026-03-01T09:30:00.000+0000", "2026-03-01 09:30:00"),  # Salesforce's form
    (FieldSpec("Met__c", "datetime"), "2026-03-01T09:30:00Z", "2026-03-01T10:30:00+01:00"),  # Dataverse's form
    (FieldSpec("LeadSource", "picklist", options=("Web", "Enginy_Outbound"), option_labels=("Web", "Enginy Outbound")),
     "Enginy_Outbound", "Enginy Outbound"),
    (FieldSpec("Employees", "int"), "120", 120.0),
    (FieldSpec("email", "email"), "ada.lovelace@example.com", "Ada.Lovelace@Example.com"),  # HubSpot lower-cases
])
def test_a_value_the_crm_holds_in_its_own_form_is_no_change(spec, held, given) -> None:
    schema = {**SCHEMA, spec.name: spec}
    batch = build_batch(pd.DataFrame([enginy()]), pd.DataFrame(MATCHED, columns=["enginy_id", "outcome", "crm_id"]),
                        pd.DataFrame([crm_record(**{spec.name: held})], columns=["crm_id", "last_modified", "owner_id",
                                                                                  "raw"]),
                        [FixedValueMapping(type="fixed_value", value=given, crm_field=spec.name)], schema, Launch())
    assert (batch.iloc[0]["action"], batch.iloc[0]["reason"]) == ("skip", "nothing to change")


@pytest.mark.parametrize("one_company, expected", [(True, ("skip", None)), (False, ("update", "additional"))])
def test_an_additional_company_link_is_asked_for_only_where_a_contact_can_hold_two(one_company, expected) -> None:
    current = {**crm_record(FirstName="Ada"), "account_id": "001HELD"}
    batch = build_batch(pd.DataFrame([enginy()]), pd.DataFrame(MATCHED, columns=["enginy_id", "outcome", "crm_id"]),
                        pd.DataFrame([current]), [field("first_name", "FirstName")], SCHEMA,
                        Launch(association="additional"), company_links={"e1": "001OTHER"},
                        one_company_per_contact=one_company)
    row = batch.iloc[0]
    assert (row["action"], row["company_link"]) == expected


@pytest.mark.parametrize("association, held, expected", [
    ("additional", "001HELD", ("skip", None, None)),  # the contact keeps its company
    ("additional", None, ("update", "additional", None)),
    ("primary", "001HELD", ("update", "primary", None)),
    ("primary_remove_previous", "001HELD", ("update", "primary", "001HELD")),
])
def test_a_link_to_a_company_the_export_creates_follows_the_association_rules(association, held, expected) -> None:
    current = {**crm_record(FirstName="Ada"), "account_id": held}
    batch = build_batch(pd.DataFrame([enginy()]), pd.DataFrame(MATCHED, columns=["enginy_id", "outcome", "crm_id"]),
                        pd.DataFrame([current]), [field("first_name", "FirstName")], SCHEMA,
                        Launch(association=association, confirm_remove_previous=True), companies_to_create=["e1"])
    row = batch.iloc[0]
    assert (row["action"], row["company_link"], row["unlink_company_id"]) == expected
    assert pd.isna(row["company_crm_id"]), "the company's id is the push's to fill in"


def test_the_push_links_contacts_to_the_companies_it_created_and_drops_links_to_ones_it_did_not() -> None:
    batch = pd.DataFrame({
        "enginy_id": ["e1", "e2", "e3", "e4"], "action": ["create", "update", "update", "update"],
        "company_enginy_id": ["co1", "co2", "co2", "co1"], "company_crm_id": [None, None, None, None],
        "company_link": ["additional", "primary", None, "primary"], "unlink_company_id": [None, "001OLD", None, None],
        "owner_id": [None, None, None, None],
        "fields": [{"LastName": "A"}, {}, {"Title": "CTO"}, {"Title": "VP"}], "reason": [None] * 4})
    linked = link_created_companies(batch, {"co1": "001NEW", "co2": None})

    def values(column: str) -> list:
        return [None if pd.isna(v) else v for v in linked[column]]

    assert values("company_crm_id") == ["001NEW", None, None, "001NEW"], "e3: the batch did not link it"
    assert values("company_link") == ["additional", None, None, "primary"]
    assert values("unlink_company_id") == [None, None, None, None], "no previous company removed for nothing"
    assert linked["action"].tolist() == ["create", "skip", "update", "update"], "an update of only that link is skipped"


def test_the_crm_fields_read_from_the_warehouses_json_text_are_the_values_parsed_dicts_hold() -> None:
    """The batch reads a CRM record's fields from the JSON text the warehouse keeps them as, not from
    a dict per record: every kind of value comes out as the dict would hold it, in the diff and in
    what is written back to Enginy."""
    kinds = {"Title": ["CTO", 12, -3, 1.5, True, False, ["a", "b"], {"x": 1}, None, 18446744073709551615],
             "Stage/Phase": ["won", 2.0, None, "", "x", "y", "z", "w", "v", "u"]}
    records = [enginy(id=f"e{i}", job_title=f"title {i}", stage=f"stage {i}") for i in range(10)]
    matches = [(f"e{i}", "matched", f"c{i}") for i in range(10)]
    crm = [crm_record(f"c{i}", **{f: v[i] for f, v in kinds.items()}) for i in range(9)]
    crm.append(crm_record("c9", Title=kinds["Title"][9]))  # a field the record does not have at all
    schema = {**SCHEMA, "Stage/Phase": FieldSpec("Stage/Phase", "string")}
    mappings = [field("job_title", "Title", "crm_overwrites_enginy"), field("stage", "Stage/Phase")]

    def batch(raw):
        snapshot = pd.DataFrame([{**r, "raw": raw(r["raw"])} for r in crm])
        return build_batch(pd.DataFrame(records), pd.DataFrame(matches, columns=["enginy_id", "outcome", "crm_id"]),
                           snapshot, mappings, schema, Launch())

    from_text, from_dicts = batch(json.dumps), batch(dict)
    pd.testing.assert_frame_equal(from_text, from_dicts)
    writeback = [json.loads(w) for w in from_text["writeback"]]
    assert [w.get("job_title") for w in writeback] == kinds["Title"][:8] + [None, kinds["Title"][9]]
    assert [type(w.get("job_title")) for w in writeback[:6]] == [str, int, int, float, bool, bool]
    assert json.loads(from_text["diff"][1])[-1] == {"field": "Stage/Phase", "crm_value": 2.0,
                                                    "new_value": "stage 1", "rule": "enginy_overwrites_crm"}


NEW = pd.DataFrame(columns=["enginy_id", "outcome", "crm_id"])
NO_CRM = pd.DataFrame(columns=["crm_id", "last_modified", "owner_id", "raw"])


def test_a_create_without_a_required_field_is_rejected_naming_it_and_the_others_are_created() -> None:
    """A NULL last_name is allowed by Enginy's contract but not by the CRM on a new contact: that
    record is rejected, the batch goes on."""
    schema = {**SCHEMA, "LastName": FieldSpec("LastName", "string", length=80)}
    records = [enginy(last_name=None), enginy(id="e2", last_name="Lovelace")]
    batch = build_batch(pd.DataFrame(records), NEW, NO_CRM, [field("last_name", "LastName")], schema, Launch(),
                        required=("LastName",))
    assert batch["action"].tolist() == ["reject", "create"]
    assert batch.iloc[0]["reason"] == "LastName: required on a new record, and the record's last_name is empty"


def test_a_required_field_left_empty_on_an_update_rejects_nothing() -> None:
    """The CRM record keeps the last name it holds: only the title is written."""
    schema = {**SCHEMA, "LastName": FieldSpec("LastName", "string")}
    batch = build_batch(pd.DataFrame([enginy(last_name=None)]), pd.DataFrame(MATCHED, columns=NEW.columns),
                        pd.DataFrame([crm_record(LastName="Lovelace", Title="x")], columns=NO_CRM.columns),
                        [field("last_name", "LastName"), field("job_title", "Title")], schema, Launch(),
                        required=("LastName",))
    assert batch["action"].tolist() == ["update"] and json.loads(batch.iloc[0]["fields"]) == {"Title": "CTO"}


@pytest.mark.parametrize("crm_type", ["string", "String", "text"])
def test_an_enginy_url_or_email_is_checked_whatever_the_crm_calls_the_fields_type(crm_type) -> None:
    """A Dataverse String column or a HubSpot string property holding a LinkedIn URL or an email
    refuses what a Salesforce url or email field refuses."""
    schema = {"Web": FieldSpec("Web", crm_type), "Mail": FieldSpec("Mail", crm_type)}
    records = [enginy(linkedin_url="javascript:alert(1)"), enginy(id="e2", email="john@localhost"),
               enginy(id="e3", linkedin_url="es.linkedin.com/in/ada", email="Ada@Acme.com")]
    batch = build_batch(pd.DataFrame(records), NEW, NO_CRM, [field("linkedin_url", "Web"), field("email", "Mail")],
                        schema, Launch())
    assert batch["action"].tolist() == ["reject", "reject", "create"]
    assert batch.iloc[0]["reason"].startswith("Web: 'javascript:alert(1)' is not a web address")
    assert batch.iloc[1]["reason"] == "Mail: 'john@localhost' is not an email address"


def test_a_value_longer_than_the_described_field_is_rejected_before_it_is_sent() -> None:
    records = [enginy(first_name="A" * 41), enginy(id="e2")]
    batch = build_batch(pd.DataFrame(records), NEW, NO_CRM, [field("first_name", "FirstName")], SCHEMA, Launch())
    assert batch["action"].tolist() == ["reject", "create"]
    assert batch.iloc[0]["reason"] == "FirstName: 41 characters, the field holds 40"
