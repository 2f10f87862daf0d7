"""The dbt tests are asset checks that stop the rollups on data breaking the Enginy contract, and
only warn where the rollups can still be right; rows breaking a table's key are quarantined
instead, and stop nothing."""

import dagster as dg
import pandas as pd
import pytest

from tests.rollups.builder import at
from tests.rollups.conftest import TARGETS, build_rollups, load_enginy, warehouse_on
from tests.rollups.test_hand_built_rollups import data_set


def _with_rows(tables: dict[str, pd.DataFrame], table: str, *rows: dict) -> None:
    tables[table] = pd.concat([tables[table], pd.DataFrame(list(rows))], ignore_index=True)


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    tables = data_set().tables()
    event = tables["campaign_events"].iloc[0].to_dict()
    _with_rows(tables, "campaign_events",
               {**event, "id": "evt_bounce", "event_type": "bounced"},
               {**event, "id": "evt_lost", "step_id": "no_such_step"})
    _with_rows(tables, "conversation_tags", {"id": "tag_happy", "name": "Happy", "category": "HAPPY"})
    _with_rows(tables, "contact_conversation_tags", {"contact_id": "nobody", "tag_id": "tag_happy", "tagged_at": at(1)})
    _with_rows(tables, "campaign_contacts", {"campaign_id": "cmp_a", "contact_id": "stranger", "added_at": at(0)})
    _with_rows(tables, "campaign_steps", {"id": "cmp_b.again", "campaign_id": "cmp_b", "position": 2,
                                          "step_type": "email", "channel": "email"})
    with warehouse_on("duckdb", tmp_path_factory.mktemp("broken")) as warehouse:
        load_enginy(warehouse, tables)
        yield build_rollups(warehouse)


def test_broken_data_fails_the_checks_that_name_the_problem(broken) -> None:
    failed = broken.failed_checks()
    expected = {
        "accepted_values_stg_enginy__campaign_events_event_type__sent__opened__clicked__replied__accepted",
        "relationships_stg_enginy__campaign_events_step_id__step_id__ref_stg_enginy__campaign_steps_",
        "accepted_values_stg_enginy__contact_tags_tag_category__POSITIVE__NEUTRAL__NEGATIVE",
        "relationships_stg_enginy__campaign_contacts_contact_id__contact_id__ref_stg_enginy__contacts_",
        "unique_combination_stg_enginy__campaign_steps_campaign_id__position",
    }
    assert expected <= set(failed), failed
    assert {failed[name] for name in expected} == {dg.AssetCheckSeverity.ERROR.value}


def test_broken_data_stops_the_run_before_the_rollups_reach_the_export(broken) -> None:
    assert not broken.result.success
    materialized = {e.asset_key.path[-1] for e in broken.result.get_asset_materialization_events()}
    assert "stg_enginy__campaign_events" in materialized
    assert not {"campaign_rollups_by_campaign", "campaign_rollups", "reads_the_rollups"} & materialized
    assert broken.rollups is None


def test_events_out_of_causal_order_warn_and_the_rollups_are_still_built(tmp_path) -> None:
    """An open of a LinkedIn message, and an open of an email never sent, break the contract but
    count nowhere; the run reports them and goes on."""
    data = data_set()
    data.event("visited", "cmp_l", 3, "opened", at(2))
    data.event("added", "cmp_a", 2, "opened", at(2))
    with warehouse_on("duckdb", tmp_path) as warehouse:
        load_enginy(warehouse, data.tables())
        built = build_rollups(warehouse)
    assert built.result.success
    assert built.failed_checks() == {"assert_events_follow_the_data_contract": dg.AssetCheckSeverity.WARN.value}
    rows = built.rollups.set_index("contact_id")
    assert rows.loc["added", "campaign_opens"] == 1  # an email step: counted, though never sent
    assert rows.loc["visited", "campaign_opens"] == 0  # a LinkedIn step: not an email open


@pytest.fixture(scope="module", params=TARGETS)
def quarantined(request, tmp_path_factory):
    """Contact "finished" (in a campaign, with events) held by two rows, a contact row without an
    id, one of contact "opened"'s events twice under the same id, identity id_jordi (campaign
    cmp_l's) held by two rows, and a membership and an applied tag each listed twice."""
    tables = data_set().tables()
    finished = tables["contacts"].set_index("id").loc["finished"].to_dict()
    event = tables["campaign_events"].set_index("id").loc["evt00003"].to_dict()  # opened's second open
    _with_rows(tables, "contacts", {**finished, "id": "finished", "first_name": "Finished Twin"},
               {**finished, "id": None, "first_name": "Nameless"})
    _with_rows(tables, "campaign_events", {**event, "id": "evt00003", "occurred_at": at(3)})
    jordi = tables["identities"].set_index("id").loc["id_jordi"].to_dict()
    _with_rows(tables, "identities", {**jordi, "id": "id_jordi", "name": "Jordi Twin"})
    _with_rows(tables, "campaign_contacts", {"campaign_id": "cmp_a", "contact_id": "opened", "added_at": at(5)})
    _with_rows(tables, "contact_conversation_tags", {"contact_id": "tagged", "tag_id": "tag000", "tagged_at": at(9)})
    with warehouse_on(request.param, tmp_path_factory.mktemp(f"quarantined-{request.param}")) as warehouse:
        load_enginy(warehouse, tables)
        yield build_rollups(warehouse)


def test_rows_breaking_a_key_are_quarantined_with_a_reason_and_the_rollups_are_built(quarantined) -> None:
    assert quarantined.result.success, quarantined.failed_checks()
    assert quarantined.failed_checks() == {}
    rows = quarantined.table("enginy_quarantine")
    rows = rows.assign(record_id=rows["record_id"].astype(object).where(rows["record_id"].notna(), None))
    held = sorted(zip(rows["source_table"], rows["record_id"].map(str), rows["field"]))
    assert held == [("campaign_events", "evt00003", "id")] * 2 + [("contacts", "None", "id")] + [
        ("contacts", "finished", "id")] * 2 + [("identities", "id_jordi", "id")] * 2
    reasons = dict(zip(rows["record_id"].map(str), rows["reason"]))
    assert "Enginy contact id finished is held by 2 rows of contacts" in reasons["finished"]
    assert "has no id" in reasons["None"]
    assert '"first_name":"Nameless"' in rows.loc[rows["record_id"].isna(), "source_row"].iloc[0]


def test_the_rollups_leave_out_a_quarantined_contact_and_its_events_and_keep_every_other(quarantined) -> None:
    expected = set(data_set().tables()["contacts"]["id"]) - {"finished"}
    assert set(quarantined.rollups["contact_id"]) == expected
    events = quarantined.table("stg_enginy__campaign_events")
    assert "finished" not in set(events["contact_id"]) and "evt00003" not in set(events["event_id"])
    opened = quarantined.rollups.set_index("contact_id").loc["opened"]
    assert opened["campaign_opens"] == 1  # of its two opens, the one whose id two rows hold is left out


def test_a_quarantined_identity_leaves_its_campaigns_unattributed_and_twice_listed_facts_count_once(
        quarantined) -> None:
    campaigns = quarantined.table("stg_enginy__campaigns").set_index("campaign_id")
    assert pd.isna(campaigns.loc["cmp_l", "identity_id"]) and campaigns.loc["cmp_a", "identity_id"] == "id_adham"
    memberships = quarantined.table("stg_enginy__campaign_contacts")
    opened = memberships[(memberships["contact_id"] == "opened") & (memberships["campaign_id"] == "cmp_a")]
    assert len(opened) == 1 and pd.Timestamp(opened["added_at"].iloc[0]) == pd.Timestamp(at(0))
    tags = quarantined.table("stg_enginy__contact_tags")
    tagged = tags[(tags["contact_id"] == "tagged") & (tags["tag_id"] == "tag000")]
    assert len(tagged) == 1 and pd.Timestamp(tagged["tagged_at"].iloc[0]) < pd.Timestamp(at(9))
