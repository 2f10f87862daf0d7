"""The rollups on generated data, for every contact, against the Python statement of the rules
(tests/rollups/reference.py) — on DuckDB and on PostgreSQL — and their internal consistency."""

import re

import pandas as pd
import pytest

from crm_pipelines.enginy.generator import generate_frames
from tests.rollups import reference
from tests.rollups.builder import ROLLUP_TABLES
from tests.rollups.conftest import TARGETS, as_records, build_rollups, load_enginy, warehouse_on

COUNTED = re.compile(r"^Message (Sent|Replied) \((\d+)/(\d+)\) - (Email|LinkedIn)$")


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    data = generate_frames(3000, seed=11)
    return {name: data.enginy[name] for name in ROLLUP_TABLES}


@pytest.fixture(scope="module", params=TARGETS)
def built(request, tmp_path_factory, tables):
    with warehouse_on(request.param, tmp_path_factory.mktemp(request.param)) as warehouse:
        load_enginy(warehouse, tables)
        result = build_rollups(warehouse)
        assert result.result.success, result.failed_checks()
        yield result


def _differences(actual: dict[str, dict], expected: dict[str, dict]) -> dict[str, dict]:
    return {key: {p: (actual[key].get(p), value) for p, value in row.items() if actual[key].get(p) != value}
            for key, row in expected.items() if any(actual[key].get(p) != v for p, v in row.items())}


def test_every_contacts_properties_follow_the_rules(built, tables) -> None:
    expected = as_records(reference.rollups(tables).rename_axis("contact_id").reset_index())
    actual = as_records(built.rollups)
    assert actual.keys() == expected.keys()
    differences = _differences(actual, expected)
    assert not differences, f"{len(differences)} contacts differ, e.g. {dict(list(differences.items())[:3])}"


def test_every_membership_keeps_its_campaigns_properties(built, tables) -> None:
    rows = built.table("campaign_rollups_by_campaign")
    key = lambda frame: frame.assign(key=frame["contact_id"] + "|" + frame["campaign_id"])  # noqa: E731
    columns = ["key", "is_most_recent_campaign", *reference.PER_CAMPAIGN]
    actual = as_records(key(rows)[columns].astype({"is_most_recent_campaign": bool}), key="key")
    expected = as_records(key(reference.rollups_by_campaign(tables))[columns], key="key")
    assert actual.keys() == expected.keys()
    differences = _differences(actual, expected)
    assert not differences, f"{len(differences)} memberships differ, e.g. {dict(list(differences.items())[:3])}"


def test_the_generated_data_holds_the_edge_cases_the_comparison_relies_on(built, tables) -> None:
    """Agreement on every contact only proves the rules on situations the data has."""
    rollups = as_records(built.rollups)
    rows = list(rollups.values())
    by_campaign = built.table("campaign_rollups_by_campaign")
    step_counts = tables["campaign_steps"].groupby("campaign_id")["position"].max()
    last_step_replies = by_campaign[by_campaign["sequence_status"].eq("Replied")
                                    & by_campaign["campaign_engagement_status"].str.match(r".*\((\d+)/\1\)")]
    assert any(r["sequence_status"] == "Not Started" for r in rows)
    assert any(r["sequence_status"] == "Finished" for r in rows)
    assert len(last_step_replies) > 0, "a reply on the last message step"
    assert (by_campaign.groupby("contact_id").size() > 1).any(), "contacts in two campaigns"
    assert any(r["campaign_sequence_details"] and "Email" not in r["campaign_sequence_details"]
               and r["sequence_status"] != "Not Started" for r in rows), "a LinkedIn-only sequence under way"
    assert any(r["conversation_tags_categories"] and len(set(r["conversation_tags_categories"].split(", "))) > 1
               for r in rows), "tags of mixed categories"
    assert any(r["campaign_open_analysis"] and "11th Message" in r["campaign_open_analysis"] for r in rows)
    assert any(r["campaign_sequence_details"] and "12th Email, 13th Email" in r["campaign_sequence_details"]
               for r in rows)
    assert (step_counts >= 13).any()


def test_the_rollups_agree_with_the_events_they_summarise(built, tables) -> None:
    """Counts the rollups imply equal the rows they come from, and k never exceeds n."""
    rollups = as_records(built.rollups)
    events = tables["campaign_events"]
    for contact, row in rollups.items():
        status = row["campaign_engagement_status"]
        if status and status != "Added to Campaign":
            _, k, n, _ = COUNTED.match(status).groups()
            assert 1 <= int(k) <= int(n), (contact, status)
    activities = {c: len(r["activities"].split(", ")) for c, r in rollups.items() if r["activities"]}
    assert activities == events.groupby("contact_id").size().to_dict()
    memberships = tables["campaign_contacts"].groupby("contact_id").size().to_dict()
    assert {c: len(r["campaigns"].split(", ")) for c, r in rollups.items() if r["campaigns"]} == memberships
    tags = tables["contact_conversation_tags"].groupby("contact_id").size().to_dict()
    assert {c: len(r["conversation_tags_categories"].split(", "))
            for c, r in rollups.items() if r["conversation_tags_categories"]} == tags
    by_campaign = built.table("campaign_rollups_by_campaign")
    email_steps = set(tables["campaign_steps"].loc[tables["campaign_steps"]["step_type"].eq("email"), "id"])
    opens = events["event_type"].eq("opened") & events["step_id"].isin(email_steps)
    clicks = events["event_type"].eq("clicked") & events["step_id"].isin(email_steps)
    assert int(by_campaign["campaign_opens"].sum()) == int(opens.sum()) > 0
    assert int(by_campaign["campaign_clicks"].sum()) == int(clicks.sum()) > 0
