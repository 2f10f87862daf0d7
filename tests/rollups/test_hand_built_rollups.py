"""The 13 campaign properties on a hand-built data set, each contact one situation with its
expected values written out — on DuckDB and on PostgreSQL, through the dbt assets."""

import pytest

from crm_pipelines.config import CAMPAIGN_PROPERTIES
from tests.rollups.builder import EnginyData, at
from tests.rollups.conftest import TARGETS, as_records, build_rollups, load_enginy, warehouse_on
from tests.rollups import reference

A = "UK Hiring Campaign"
B = "Italian SDR Campaign"
A_STEPS = "1st Email, 2nd Email, LinkedIn Connection Request, 1st LinkedIn"
B_STEPS = "1st Email, 2nd Email, 3rd Email"


def data_set() -> EnginyData:
    d = EnginyData()
    d.identity("id_adham", "Adham Elman")
    d.identity("id_giulio", "Giulio Gargano")
    d.identity("id_jordi", "Jordi Casas")
    d.campaign("cmp_a", A, "id_adham", ["email", "email", "linkedin_connection_request", "linkedin_message"])
    d.campaign("cmp_b", B, "id_giulio", ["email"] * 3)
    d.campaign("cmp_l", "LinkedIn Only Campaign", "id_jordi",
               ["linkedin_profile_visit", "linkedin_connection_request", "linkedin_message", "linkedin_message"])
    d.campaign("cmp_m", "Mixed Campaign", "id_adham", ["email", "call", "email", "linkedin_message", "email"])
    d.campaign("cmp_t", "Thirteen Step Campaign", "id_jordi", ["email"] * 13)
    d.campaign("cmp_x", "Long Campaign", "id_giulio", ["email"] * 23)
    d.campaign("cmp_h", "Hundred Campaign", "id_giulio", ["email"] * 113)
    d.campaign("cmp_e", "Empty Campaign", "id_jordi", [])
    d.contacts("nobody", "added", "opened", "finished", "replied_last", "replied_first", "replied_twice",
               "linkedin_only", "visited", "mixed", "thirteen", "long", "hundred", "two_recent_added",
               "two_recent_activity", "two_senders", "tie", "tagged", "empty_campaign")

    d.add("added", "cmp_a", at(0))

    d.add("opened", "cmp_a", at(0))
    d.event("opened", "cmp_a", 1, "sent", at(1))
    d.event("opened", "cmp_a", 1, "opened", at(1, 2))
    d.event("opened", "cmp_a", 1, "clicked", at(1, 3))
    d.event("opened", "cmp_a", 1, "opened", at(2))

    d.add("finished", "cmp_a", at(0))
    d.event("finished", "cmp_a", 1, "sent", at(1))
    d.event("finished", "cmp_a", 2, "sent", at(3))
    d.event("finished", "cmp_a", 2, "opened", at(3, 1))
    d.event("finished", "cmp_a", 3, "sent", at(5))
    d.event("finished", "cmp_a", 3, "accepted", at(6))
    d.event("finished", "cmp_a", 4, "sent", at(7))

    d.add("replied_last", "cmp_a", at(0))
    d.sent("replied_last", "cmp_a", [1, 2, 3, 4], first_day=1)
    d.event("replied_last", "cmp_a", 4, "replied", at(8))

    d.add("replied_first", "cmp_b", at(0))
    d.event("replied_first", "cmp_b", 1, "sent", at(1))
    d.event("replied_first", "cmp_b", 1, "replied", at(2))

    d.add("replied_twice", "cmp_b", at(0))
    d.event("replied_twice", "cmp_b", 1, "sent", at(1))
    d.event("replied_twice", "cmp_b", 1, "replied", at(1, 5))
    d.event("replied_twice", "cmp_b", 2, "sent", at(3))
    d.event("replied_twice", "cmp_b", 3, "sent", at(5))
    d.event("replied_twice", "cmp_b", 3, "opened", at(5, 1))
    d.event("replied_twice", "cmp_b", 3, "replied", at(6))

    d.add("linkedin_only", "cmp_l", at(0))
    d.event("linkedin_only", "cmp_l", 1, "sent", at(1))
    d.event("linkedin_only", "cmp_l", 2, "sent", at(2))
    d.event("linkedin_only", "cmp_l", 2, "accepted", at(3))
    d.event("linkedin_only", "cmp_l", 3, "sent", at(4))
    d.event("linkedin_only", "cmp_l", 4, "sent", at(6))

    d.add("visited", "cmp_l", at(0))
    d.event("visited", "cmp_l", 1, "sent", at(1))

    d.add("mixed", "cmp_m", at(0))
    d.sent("mixed", "cmp_m", [1, 2, 3], first_day=1)

    d.add("thirteen", "cmp_t", at(0))
    d.sent("thirteen", "cmp_t", range(1, 14), first_day=1)
    for position in (11, 12, 13):
        d.event("thirteen", "cmp_t", position, "opened", at(position, 1))
    d.event("thirteen", "cmp_t", 12, "clicked", at(12, 2))
    d.event("thirteen", "cmp_t", 13, "replied", at(14))

    d.add("long", "cmp_x", at(0))
    d.sent("long", "cmp_x", range(1, 23), first_day=1)
    d.event("long", "cmp_x", 21, "opened", at(21, 1))
    d.event("long", "cmp_x", 22, "opened", at(22, 1))

    d.add("hundred", "cmp_h", at(0))
    d.sent("hundred", "cmp_h", range(1, 113), first_day=1)
    for position in (101, 111, 112):
        d.event("hundred", "cmp_h", position, "opened", at(position, 1))

    d.add("two_recent_added", "cmp_a", at(0))
    d.event("two_recent_added", "cmp_a", 1, "sent", at(1))
    d.add("two_recent_added", "cmp_b", at(10))

    d.add("two_recent_activity", "cmp_a", at(0))
    d.event("two_recent_activity", "cmp_a", 1, "sent", at(1))
    d.event("two_recent_activity", "cmp_a", 2, "sent", at(20))
    d.add("two_recent_activity", "cmp_b", at(10))

    d.add("two_senders", "cmp_b", at(0))
    d.add("two_senders", "cmp_a", at(2))
    d.event("two_senders", "cmp_b", 1, "sent", at(1))
    d.event("two_senders", "cmp_a", 1, "sent", at(3))
    d.event("two_senders", "cmp_b", 2, "sent", at(4))

    d.add("tie", "cmp_a", at(0))
    d.add("tie", "cmp_b", at(0))

    d.tag("tagged", "Positive", "POSITIVE", at(2))
    d.tag("tagged", "Contacted", "NEUTRAL", at(1))
    d.tag("tagged", "Not Interested", "NEGATIVE", at(3))

    d.add("empty_campaign", "cmp_e", at(0))
    return d


def untouched(steps: str, campaigns: str) -> dict:
    return {"campaign_sequence_details": steps, "campaign_engagement_status": "Added to Campaign",
            "sequence_status": "Not Started", "campaign_reply_analysis": "No", "campaign_opens": 0,
            "campaign_clicks": 0, "campaign_open_analysis": "No", "campaign_click_analysis": "No",
            "campaigns": campaigns, "senders": None, "activities": None, "conversation_tags": None,
            "conversation_tags_categories": None}


NOTHING = dict.fromkeys(CAMPAIGN_PROPERTIES)


def emails(n: int) -> str:
    return ", ".join(f"{reference.ordinal(i)} Email" for i in range(1, n + 1))


EXPECTED = {
    "nobody": NOTHING,
    "added": untouched(A_STEPS, A),
    "opened": {**untouched(A_STEPS, A), "campaign_engagement_status": "Message Sent (1/3) - Email",
               "sequence_status": "Ongoing", "campaign_opens": 2, "campaign_clicks": 1,
               "campaign_open_analysis": "Yes (1st Message)", "campaign_click_analysis": "Yes (1st Message)",
               "senders": "Adham Elman", "activities": "Email sent, Email opened, Email link clicked, Email opened"},
    "finished": {**untouched(A_STEPS, A), "campaign_engagement_status": "Message Sent (3/3) - LinkedIn",
                 "sequence_status": "Finished", "campaign_opens": 1, "campaign_open_analysis": "Yes (2nd Message)",
                 "senders": "Adham Elman",
                 "activities": "Email sent, Email sent, Email opened, LinkedIn Invitation sent, "
                               "Contact has accepted invitation, LinkedIn message sent"},
    "replied_last": {**untouched(A_STEPS, A), "campaign_engagement_status": "Message Replied (3/3) - LinkedIn",
                     "sequence_status": "Replied", "campaign_reply_analysis": "Yes (3rd Message)",
                     "senders": "Adham Elman",
                     "activities": "Email sent, Email sent, LinkedIn Invitation sent, LinkedIn message sent, "
                                   "Contact has replied on LinkedIn"},
    "replied_first": {**untouched(B_STEPS, B), "campaign_engagement_status": "Message Replied (1/3) - Email",
                      "sequence_status": "Replied", "campaign_reply_analysis": "Yes (1st Message)",
                      "senders": "Giulio Gargano", "activities": "Email sent, Contact has replied to email"},
    "replied_twice": {**untouched(B_STEPS, B), "campaign_engagement_status": "Message Replied (3/3) - Email",
                      "sequence_status": "Replied",
                      "campaign_reply_analysis": "Yes (1st Message), Yes (3rd Message)",
                      "campaign_opens": 1, "campaign_open_analysis": "Yes (3rd Message)",
                      "senders": "Giulio Gargano",
                      "activities": "Email sent, Contact has replied to email, Email sent, Email sent, Email opened, "
                                    "Contact has replied to email"},
    "linkedin_only": {**untouched("LinkedIn Profile Visit, LinkedIn Connection Request, 1st LinkedIn, 2nd LinkedIn",
                                  "LinkedIn Only Campaign"),
                      "campaign_engagement_status": "Message Sent (2/2) - LinkedIn", "sequence_status": "Finished",
                      "senders": "Jordi Casas",
                      "activities": "Visit LinkedIn profile, LinkedIn Invitation sent, Contact has accepted invitation, "
                                    "LinkedIn message sent, LinkedIn message sent"},
    "visited": {**untouched("LinkedIn Profile Visit, LinkedIn Connection Request, 1st LinkedIn, 2nd LinkedIn",
                            "LinkedIn Only Campaign"),
                "sequence_status": "Ongoing", "senders": "Jordi Casas", "activities": "Visit LinkedIn profile"},
    "mixed": {**untouched("1st Email, Call, 2nd Email, 1st LinkedIn, 3rd Email", "Mixed Campaign"),
              "campaign_engagement_status": "Message Sent (2/4) - Email", "sequence_status": "Ongoing",
              "senders": "Adham Elman", "activities": "Email sent, Call made, Email sent"},
    "thirteen": {**untouched(emails(13), "Thirteen Step Campaign"),
                 "campaign_engagement_status": "Message Replied (13/13) - Email", "sequence_status": "Replied",
                 "campaign_reply_analysis": "Yes (13th Message)", "campaign_opens": 3, "campaign_clicks": 1,
                 "campaign_open_analysis": "Yes (11th Message), Yes (12th Message), Yes (13th Message)",
                 "campaign_click_analysis": "Yes (12th Message)", "senders": "Jordi Casas",
                 "activities": ", ".join(["Email sent"] * 11 + ["Email opened", "Email sent", "Email opened",
                                                                "Email link clicked", "Email sent", "Email opened",
                                                                "Contact has replied to email"])},
    "long": {**untouched(emails(23), "Long Campaign"),
             "campaign_engagement_status": "Message Sent (22/23) - Email", "sequence_status": "Ongoing",
             "campaign_opens": 2, "campaign_open_analysis": "Yes (21st Message), Yes (22nd Message)",
             "senders": "Giulio Gargano",
             "activities": ", ".join(["Email sent"] * 21 + ["Email opened", "Email sent", "Email opened"])},
    "hundred": {**untouched(emails(113), "Hundred Campaign"),
                "campaign_engagement_status": "Message Sent (112/113) - Email", "sequence_status": "Ongoing",
                "campaign_opens": 3,
                "campaign_open_analysis": "Yes (101st Message), Yes (111th Message), Yes (112th Message)",
                "senders": "Giulio Gargano",
                "activities": ", ".join(["Email sent"] * 101 + ["Email opened"] + ["Email sent"] * 10
                                        + ["Email opened", "Email sent", "Email opened"])},
    "two_recent_added": {**untouched(B_STEPS, f"{A}, {B}"), "senders": "Adham Elman", "activities": "Email sent"},
    "two_recent_activity": {**untouched(A_STEPS, f"{A}, {B}"), "campaign_engagement_status": "Message Sent (2/3) - Email",
                            "sequence_status": "Ongoing", "senders": "Adham Elman",
                            "activities": "Email sent, Email sent"},
    "two_senders": {**untouched(B_STEPS, f"{B}, {A}"), "campaign_engagement_status": "Message Sent (2/3) - Email",
                    "sequence_status": "Ongoing", "senders": "Giulio Gargano, Adham Elman",
                    "activities": "Email sent, Email sent, Email sent"},
    "tie": untouched(B_STEPS, f"{B}, {A}"),
    "tagged": {**NOTHING, "conversation_tags": "Contacted, Positive, Not Interested",
               "conversation_tags_categories": "NEUTRAL, POSITIVE, NEGATIVE"},
    "empty_campaign": untouched(None, "Empty Campaign"),
}


@pytest.fixture(scope="module", params=TARGETS)
def built(request, tmp_path_factory):
    with warehouse_on(request.param, tmp_path_factory.mktemp(request.param)) as warehouse:
        load_enginy(warehouse, data_set().tables())
        yield build_rollups(warehouse)


def test_the_expectations_follow_the_written_rules() -> None:
    """The expected values above and the Python statement of the rules agree, so a mistake in
    either shows up here rather than as a puzzling warehouse failure."""
    assert as_records(reference.rollups(data_set().tables()).rename_axis("contact_id").reset_index()) == EXPECTED


def test_the_build_succeeds_with_every_dbt_test_passing(built) -> None:
    assert built.result.success
    assert built.failed_checks() == {}


def test_the_rollups_have_the_configs_thirteen_properties_one_row_per_contact(built) -> None:
    assert list(built.rollups.columns) == ["contact_id", *CAMPAIGN_PROPERTIES]
    assert sorted(built.rollups["contact_id"]) == sorted(EXPECTED)


@pytest.mark.parametrize("contact", sorted(EXPECTED))
def test_each_situation_gets_the_properties_the_seeds_show(built, contact: str) -> None:
    assert as_records(built.rollups)[contact] == EXPECTED[contact]


def test_ordinals_follow_english_through_the_hundreds(built) -> None:
    details = as_records(built.rollups)["hundred"]["campaign_sequence_details"].split(", ")
    assert details[:4] == ["1st Email", "2nd Email", "3rd Email", "4th Email"]
    assert details[10:13] == ["11th Email", "12th Email", "13th Email"]
    assert details[20:24] == ["21st Email", "22nd Email", "23rd Email", "24th Email"]
    assert details[100:104] == ["101st Email", "102nd Email", "103rd Email", "104th Email"]
    assert details[110:113] == ["111th Email", "112th Email", "113th Email"]


def test_every_campaign_of_a_contact_keeps_its_own_row(built) -> None:
    """Nothing is lost when a contact is in two campaigns: the one campaign_rollups does not show
    keeps its properties in campaign_rollups_by_campaign."""
    rows = built.table("campaign_rollups_by_campaign")
    mine = as_records(rows[rows["contact_id"] == "two_recent_added"], key="campaign_id")
    assert set(mine) == {"cmp_a", "cmp_b"}
    assert mine["cmp_a"]["campaign_engagement_status"] == "Message Sent (1/3) - Email"
    assert [bool(mine[c]["is_most_recent_campaign"]) for c in ("cmp_a", "cmp_b")] == [False, True]
    assert (int(mine["cmp_b"]["message_steps"]), int(mine["cmp_a"]["engagement_message_number"])) == (3, 1)
