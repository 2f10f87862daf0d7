"""The campaign-mapping rules of dbt_project/models/rollups/_rollups.yml, computed again in plain
Python, row by row, from the Enginy tables — written from the rules, not from the SQL, so that
the two agreeing on every contact means something."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pandas as pd

MESSAGE_STEPS = ("email", "linkedin_message")
SENT = {"linkedin_profile_visit": "Visit LinkedIn profile", "linkedin_connection_request": "LinkedIn Invitation sent",
        "linkedin_message": "LinkedIn message sent", "email": "Email sent", "call": "Call made"}
PER_CAMPAIGN = ("campaign_sequence_details", "campaign_engagement_status", "sequence_status",
                "campaign_reply_analysis", "campaign_opens", "campaign_clicks", "campaign_open_analysis",
                "campaign_click_analysis")


def ordinal(n: int) -> str:
    if n % 100 in (11, 12, 13):
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th') }"


def activity(event_type: str, step_type: str) -> str:
    if event_type == "sent":
        return SENT[step_type]
    if event_type == "replied":
        return "Contact has replied to email" if step_type == "email" else "Contact has replied on LinkedIn"
    return {"opened": "Email opened", "clicked": "Email link clicked",
            "accepted": "Contact has accepted invitation"}[event_type]


def _steps(tables: dict[str, pd.DataFrame]) -> dict[str, list[dict[str, Any]]]:
    """Campaign id → its steps in position order, each with its label and message number."""
    by_campaign: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for step in tables["campaign_steps"].sort_values("position").to_dict("records"):
        by_campaign[str(step["campaign_id"])].append(step)
    for steps in by_campaign.values():
        messages = 0
        per_type: dict[str, int] = defaultdict(int)
        for step in steps:
            kind = step["step_type"]
            step["message_number"] = None
            if kind in MESSAGE_STEPS:
                messages += 1
                per_type[kind] += 1
                step["message_number"] = messages
            step["label"] = {
                "email": f"{ordinal(per_type['email'])} Email",
                "linkedin_message": f"{ordinal(per_type['linkedin_message'])} LinkedIn",
                "linkedin_connection_request": "LinkedIn Connection Request",
                "linkedin_profile_visit": "LinkedIn Profile Visit",
                "call": "Call",
            }[kind]
    return by_campaign


def _answers(numbers: list[int]) -> str:
    return ", ".join(f"Yes ({ordinal(n)} Message)" for n in sorted(numbers)) or "No"


def rollups_by_campaign(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per membership: the per-campaign properties and whether it is the most recent."""
    steps = _steps(tables)
    step_by_id = {str(s["id"]): s for ss in steps.values() for s in ss}
    names = dict(zip(tables["campaigns"]["id"].astype(str), tables["campaigns"]["name"]))
    events: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for event in tables["campaign_events"].to_dict("records"):
        step = step_by_id[str(event["step_id"])]
        events[(str(event["contact_id"]), str(step["campaign_id"]))].append({**event, "step": step})

    rows = []
    for member in tables["campaign_contacts"].to_dict("records"):
        contact, campaign = str(member["contact_id"]), str(member["campaign_id"])
        sequence = steps.get(campaign, [])
        mine = events[(contact, campaign)]

        def steps_with(event_type: str, kinds: tuple[str, ...]) -> list[dict[str, Any]]:
            seen = {str(e["step_id"]) for e in mine if e["event_type"] == event_type and e["step"]["step_type"] in kinds}
            return [s for s in sequence if str(s["id"]) in seen]

        executed = steps_with("sent", ("email", "linkedin_message", "linkedin_connection_request",
                                       "linkedin_profile_visit", "call"))
        sent_messages = steps_with("sent", MESSAGE_STEPS)
        replied = steps_with("replied", MESSAGE_STEPS)
        opened = steps_with("opened", ("email",))
        clicked = steps_with("clicked", ("email",))
        n = sum(1 for s in sequence if s["message_number"])
        if replied:
            step = replied[-1]
            engagement = f"Message Replied ({step['message_number']}/{n}) - " + \
                ("Email" if step["step_type"] == "email" else "LinkedIn")
        elif sent_messages:
            step = sent_messages[-1]
            engagement = f"Message Sent ({step['message_number']}/{n}) - " + \
                ("Email" if step["step_type"] == "email" else "LinkedIn")
        else:
            engagement = "Added to Campaign"
        if replied:
            status = "Replied"
        elif not executed:
            status = "Not Started"
        elif executed[-1]["position"] == sequence[-1]["position"]:
            status = "Finished"
        else:
            status = "Ongoing"
        last_event = max((e["occurred_at"] for e in mine), default=None)
        rows.append({
            "contact_id": contact, "campaign_id": campaign, "campaign_name": names.get(campaign),
            "added_at": member["added_at"],
            "last_active_at": max(member["added_at"], last_event) if last_event is not None else member["added_at"],
            "campaign_sequence_details": ", ".join(s["label"] for s in sequence) or None,
            "campaign_engagement_status": engagement,
            "sequence_status": status,
            "campaign_reply_analysis": _answers([s["message_number"] for s in replied]),
            "campaign_opens": sum(1 for e in mine if e["event_type"] == "opened" and e["step"]["step_type"] == "email"),
            "campaign_clicks": sum(1 for e in mine if e["event_type"] == "clicked" and e["step"]["step_type"] == "email"),
            "campaign_open_analysis": _answers([s["message_number"] for s in opened]),
            "campaign_click_analysis": _answers([s["message_number"] for s in clicked]),
        })
    frame = pd.DataFrame(rows, columns=["contact_id", "campaign_id", "campaign_name", "added_at", "last_active_at",
                                        *PER_CAMPAIGN])
    latest = frame.sort_values(["last_active_at", "added_at", "campaign_id"]).groupby("contact_id").tail(1)
    frame["is_most_recent_campaign"] = frame.index.isin(latest.index)
    return frame


def rollups(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per contact, indexed by contact id: the 13 campaign properties."""
    by_campaign = rollups_by_campaign(tables)
    latest = by_campaign[by_campaign["is_most_recent_campaign"]].set_index("contact_id")
    step_type = dict(zip(tables["campaign_steps"]["id"].astype(str), tables["campaign_steps"]["step_type"]))
    identity = dict(zip(tables["identities"]["id"].astype(str), tables["identities"]["name"]))
    tag = {str(t["id"]): t for t in tables["conversation_tags"].to_dict("records")}

    campaigns: dict[str, list] = defaultdict(list)
    for row in by_campaign.to_dict("records"):
        campaigns[row["contact_id"]].append((row["added_at"], row["campaign_name"], row["campaign_id"]))
    first_contact: dict[str, dict[str, Any]] = defaultdict(dict)
    activities: dict[str, list] = defaultdict(list)
    for event in tables["campaign_events"].to_dict("records"):
        contact = str(event["contact_id"])
        kind = step_type[str(event["step_id"])]
        activities[contact].append((event["occurred_at"], str(event["id"]), activity(event["event_type"], kind)))
        if event["event_type"] == "sent":
            name = identity[str(event["identity_id"])]
            seen = first_contact[contact].get(name)
            first_contact[contact][name] = event["occurred_at"] if seen is None else min(seen, event["occurred_at"])
    tags: dict[str, list] = defaultdict(list)
    for applied in tables["contact_conversation_tags"].to_dict("records"):
        t = tag[str(applied["tag_id"])]
        tags[str(applied["contact_id"])].append((applied["tagged_at"], t["name"], str(t["id"]), t["category"]))

    rows = {}
    for contact in tables["contacts"]["id"].astype(str):
        row: dict[str, Any] = {p: None for p in PER_CAMPAIGN}
        if contact in latest.index:
            row.update({p: latest.at[contact, p] for p in PER_CAMPAIGN})
        row["campaigns"] = ", ".join(name for _, name, _ in sorted(campaigns[contact])) or None
        senders = sorted((at, name) for name, at in first_contact[contact].items())
        row["senders"] = ", ".join(name for _, name in senders) or None
        row["activities"] = ", ".join(label for _, _, label in sorted(activities[contact])) or None
        applied = sorted(tags[contact])
        row["conversation_tags"] = ", ".join(name for _, name, _, _ in applied) or None
        row["conversation_tags_categories"] = ", ".join(category for *_, category in applied) or None
        rows[contact] = row
    return pd.DataFrame.from_dict(rows, orient="index")
