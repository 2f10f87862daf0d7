"""The activity plan, pure: which campaign events become CRM activities, on which record, credited
to whom, with what subject and description — small frames built inline."""

from datetime import datetime, timezone

import pandas as pd

from crm_pipelines.config import ActivitySync, UserMapping
from crm_pipelines.export.activities import (
    WAITING_AMBIGUOUS, WAITING_NEW, Attribution, activities_to_send, crm_records, plan_activities,
)
from crm_pipelines.export.ledger import Ledger, empty_ledger
from crm_pipelines.export.writes import WriteResult

AT = datetime(2024, 5, 2, 9, 30, tzinfo=timezone.utc)
STEPS = pd.DataFrame({"id": ["s-mail", "s-call", "s-msg", "s-inv", "s-visit"], "campaign_id": "cmp",
                      "position": [1, 2, 3, 4, 5],
                      "step_type": ["email", "call", "linkedin_message", "linkedin_connection_request",
                                    "linkedin_profile_visit"],
                      "channel": ["email", "call", "linkedin", "linkedin", "linkedin"]})
CAMPAIGNS = pd.DataFrame({"id": ["cmp"], "name": ["Q4 Outbound"], "identity_id": ["id-ada"]})
NOBODY = Attribution(UserMapping(), {}, {}, {})


def event(eid: str, step: str, contact: str = "c1", event_type: str = "sent", subject=None, body=None,
          identity: str = "id-ada") -> dict:
    return {"id": eid, "campaign_id": "cmp", "step_id": step, "contact_id": contact, "identity_id": identity,
            "event_type": event_type, "occurred_at": AT, "subject": subject, "body": body}


def matched(*contacts: str, crm_object: str = "contacts") -> pd.DataFrame:
    return pd.DataFrame({"enginy_id": list(contacts), "outcome": "matched",
                         "crm_id": [f"crm-{c}" for c in contacts], "crm_object": crm_object})


def plan(events: list[dict], matches: pd.DataFrame | None = None, body: bool = False,
         attribution: Attribution = NOBODY, created: pd.DataFrame | None = None) -> pd.DataFrame:
    records = crm_records(matched("c1") if matches is None else matches,
                          empty_ledger() if created is None else created)
    return plan_activities(pd.DataFrame(events), STEPS, CAMPAIGNS, records,
                           ActivitySync(enabled=True, include_message_body=body), attribution)


def test_subjects_follow_the_engage_formats_with_our_name() -> None:
    rows = plan([event("e1", "s-mail", subject="Quick question"), event("e2", "s-call"),
                 event("e3", "s-msg", body="Hi"), event("e4", "s-inv")]).set_index("event_id")
    assert rows.loc["e1", "subject"] == "Enginy: Sent Email Quick question"
    assert rows.loc["e2", "subject"] == "Enginy Call: Q4 Outbound", "a call is about its campaign"
    assert rows.loc["e3", "subject"] == "Enginy: LinkedIn Message Sent"
    assert rows.loc["e4", "subject"] == "Enginy: LinkedIn Invitation Sent"


def test_only_outreach_that_was_sent_becomes_an_activity() -> None:
    """Opens, clicks, replies and profile visits are campaign analytics, not touchpoints logged in the CRM."""
    rows = plan([event("sent", "s-mail", subject="Hello"), event("open", "s-mail", event_type="opened"),
                 event("reply", "s-mail", event_type="replied"), event("visit", "s-visit")])
    assert rows["event_id"].tolist() == ["sent"]


def test_the_message_is_in_the_description_only_when_include_message_body_is_on() -> None:
    events = [event("e1", "s-mail", subject="Hello", body="Dear Ada, about your pipeline")]
    without = plan(events).iloc[0]
    with_body = plan(events, body=True).iloc[0]
    assert "Dear Ada" not in (without["description"] or "") and without["body"] is None
    assert with_body["description"].startswith("Dear Ada, about your pipeline")
    assert "Q4 Outbound, step 1" in without["description"], "the campaign is named either way"


def test_the_identity_mapping_credits_the_activity_before_any_other_rule() -> None:
    attribution = Attribution(UserMapping(identities={"id-ada": "005-ada"}, users={"u-ada": "005-user"},
                                          default_owner="005-default"),
                              {"id-ada": "u-ada"}, {"u-ada": "ada@acme.com"}, {"ada@acme.com": "005-email"})
    row = plan([event("e1", "s-call")], attribution=attribution).iloc[0]
    assert (row["owner_id"], row["owner_rule"]) == ("005-ada", "identity")


def test_an_unmapped_identity_falls_back_to_its_user_then_email_then_default_owner_then_the_crm() -> None:
    identity_users, emails = {"id-ada": "u-ada"}, {"u-ada": "Ada@Acme.com"}
    chain = [
        (Attribution(UserMapping(users={"u-ada": "005-user"}, default_owner="005-d"), identity_users, emails,
                     {"ada@acme.com": "005-email"}), ("005-user", "user")),
        (Attribution(UserMapping(default_owner="005-d"), identity_users, emails, {"ada@acme.com": "005-email"}),
         ("005-email", "same_email")),
        (Attribution(UserMapping(default_owner="005-d"), identity_users, emails, {}), ("005-d", "default_owner")),
        (Attribution(UserMapping(), identity_users, emails, {}), (None, "crm_default")),
    ]
    for attribution, expected in chain:
        row = plan([event("e1", "s-call")], attribution=attribution).iloc[0]
        assert (row["owner_id"], row["owner_rule"]) == expected


def test_an_event_without_its_identity_is_credited_through_its_campaigns_identity() -> None:
    attribution = Attribution(UserMapping(identities={"id-ada": "005-ada"}), {}, {}, {})
    row = plan([event("e1", "s-call", identity=None)], attribution=attribution).iloc[0]
    assert (row["owner_id"], row["owner_rule"]) == ("005-ada", "identity")


def test_a_mapping_may_name_the_crm_user_by_email() -> None:
    attribution = Attribution(UserMapping(identities={"id-ada": "ADA@crm.example"}), {}, {},
                              {"ada@crm.example": "005-ada"})
    assert plan([event("e1", "s-call")], attribution=attribution).iloc[0]["owner_id"] == "005-ada"


def test_events_of_contacts_not_in_the_crm_are_kept_waiting_with_the_reason() -> None:
    matches = pd.concat([matched("c1"), pd.DataFrame({"enginy_id": ["c2", "c3"], "outcome": ["new", "ambiguous"],
                                                      "crm_id": [None, None], "crm_object": [None, None]})])
    rows = plan([event("e1", "s-call"), event("e2", "s-call", contact="c2"), event("e3", "s-call", contact="c3"),
                 event("e4", "s-call", contact="c4")], matches=matches).set_index("event_id")
    assert rows.loc["e1", "status"] == "ready" and rows.loc["e1", "crm_record_id"] == "crm-c1"
    assert rows.loc["e2", "status"] == "waiting" and rows.loc["e2", "reason"] == WAITING_NEW
    assert rows.loc["e3", "reason"] == WAITING_AMBIGUOUS
    assert rows.loc["e4", "reason"] == WAITING_NEW, "a contact matching has not seen yet waits too"


def test_a_contact_the_push_created_gets_its_activities_on_the_new_record() -> None:
    matches = pd.DataFrame({"enginy_id": ["c2"], "outcome": ["new"], "crm_id": [None], "crm_object": [None]})
    ledger = pd.DataFrame({"write_id": ["w"], "object": ["leads"], "enginy_id": ["c2"], "action": ["create"],
                           "crm_id": ["00Q-new"], "status": ["created"]})
    row = plan([event("e1", "s-call", contact="c2")], matches=matches, created=ledger).iloc[0]
    assert (row["status"], row["crm_object"], row["crm_record_id"]) == ("ready", "leads", "00Q-new")


def test_a_contact_skipped_as_the_same_person_as_another_gets_its_activities_on_that_ones_record() -> None:
    """The batch created c2 only (c3 is the same person); c4's twin c5 is nowhere in the CRM yet."""
    matches = pd.DataFrame({"enginy_id": ["c2", "c3", "c4", "c5"], "outcome": "new", "crm_id": None,
                            "crm_object": None})
    ledger = pd.DataFrame({"write_id": ["w"], "object": ["contacts"], "enginy_id": ["c2"], "action": ["create"],
                           "crm_id": ["003-new"], "status": ["created"]})
    records = crm_records(matches, ledger, pd.Series({"c3": "c2", "c4": "c5"}))
    rows = plan_activities(pd.DataFrame([event("e1", "s-call", contact="c3"), event("e2", "s-call", contact="c4")]),
                           STEPS, CAMPAIGNS, records, ActivitySync(enabled=True), NOBODY).set_index("event_id")
    assert (rows.loc["e1", "status"], rows.loc["e1", "crm_record_id"]) == ("ready", "003-new")
    assert (rows.loc["e2", "status"], rows.loc["e2", "reason"]) == ("waiting", WAITING_NEW)


def test_the_ledger_skips_logged_events_and_marks_unanswered_ones_for_a_look_up() -> None:
    planned = plan([event("e1", "s-call"), event("e2", "s-call"), event("e3", "s-call")])
    first, _ = activities_to_send(planned, empty_ledger())
    ledger = Ledger()
    ledger.mark_sent("activities", first[:2])
    ledger.record([WriteResult("e1", "created", "00T1")])
    again, done = activities_to_send(planned, ledger.frame())
    assert done == 1 and [(a.write_id, a.in_doubt) for a in again] == [("e2", True), ("e3", False)]


def test_touchpoints_before_the_since_day_are_not_logged() -> None:
    import datetime as dt

    events = [{**event("old", "s-mail", subject="Hi"), "occurred_at": AT - dt.timedelta(days=40)},
              event("new", "s-mail", subject="Hi again")]
    records = crm_records(matched("c1"), empty_ledger())
    since = (AT - dt.timedelta(days=1)).date()
    rows = plan_activities(pd.DataFrame(events), STEPS, CAMPAIGNS, records,
                           ActivitySync(enabled=True, since=since), NOBODY)
    assert list(rows["event_id"]) == ["new"]
    assert list(plan(events)["event_id"]) == ["old", "new"], "without since, every touchpoint"
