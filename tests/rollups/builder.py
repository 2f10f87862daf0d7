"""Small Enginy data sets written by hand: campaigns, their steps, memberships, events and tags,
in the shape of the Enginy data contract (crm_pipelines/enginy/schema.py)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import pandas as pd

T0 = pd.Timestamp("2026-03-02 09:00", tz="UTC")
CHANNEL = {"email": "email", "linkedin_message": "linkedin", "linkedin_connection_request": "linkedin",
           "linkedin_profile_visit": "linkedin", "call": "call"}
# The tables the dbt project reads: the rollups', and companies, whose keys it quarantines too.
ROLLUP_TABLES = ("contacts", "companies", "identities", "campaigns", "campaign_steps", "campaign_contacts",
                 "campaign_events", "conversation_tags", "contact_conversation_tags")
COLUMNS = {
    "contacts": ["id", "first_name", "created_at", "updated_at"],
    "companies": ["id", "name", "created_at", "updated_at"],
    "identities": ["id", "name", "created_at"],
    "campaigns": ["id", "name", "identity_id", "created_at"],
    "campaign_steps": ["id", "campaign_id", "position", "step_type", "channel"],
    "campaign_contacts": ["campaign_id", "contact_id", "added_at"],
    "campaign_events": ["id", "campaign_id", "step_id", "contact_id", "identity_id", "channel", "event_type",
                        "occurred_at"],
    "conversation_tags": ["id", "name", "category"],
    "contact_conversation_tags": ["contact_id", "tag_id", "tagged_at"],
}
TIMESTAMPS = {"created_at", "updated_at", "added_at", "occurred_at", "tagged_at"}


def at(day: float, hours: float = 0) -> pd.Timestamp:
    return T0 + pd.Timedelta(days=day, hours=hours)


class EnginyData:
    """Rows of the Enginy tables, added one fact at a time."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict]] = defaultdict(list)
        self._identity_of: dict[str, str] = {}
        self._tags: dict[str, str] = {}

    def identity(self, identity_id: str, name: str) -> None:
        self.rows["identities"].append({"id": identity_id, "name": name, "created_at": T0})

    def contacts(self, *contact_ids: str) -> None:
        for contact_id in contact_ids:
            self.rows["contacts"].append({"id": contact_id, "first_name": contact_id.title(),
                                          "created_at": T0, "updated_at": T0})

    def campaign(self, campaign_id: str, name: str, identity_id: str, steps: Iterable[str]) -> None:
        self._identity_of[campaign_id] = identity_id
        self.rows["campaigns"].append({"id": campaign_id, "name": name, "identity_id": identity_id, "created_at": T0})
        for position, kind in enumerate(steps, start=1):
            self.rows["campaign_steps"].append({"id": f"{campaign_id}.{position}", "campaign_id": campaign_id,
                                                "position": position, "step_type": kind, "channel": CHANNEL[kind]})

    def add(self, contact_id: str, campaign_id: str, when: pd.Timestamp) -> None:
        self.rows["campaign_contacts"].append({"campaign_id": campaign_id, "contact_id": contact_id,
                                               "added_at": when})

    def event(self, contact_id: str, campaign_id: str, position: int, event_type: str, when: pd.Timestamp) -> None:
        step = next(s for s in self.rows["campaign_steps"]
                    if s["campaign_id"] == campaign_id and s["position"] == position)
        self.rows["campaign_events"].append({
            "id": f"evt{len(self.rows['campaign_events']):05d}", "campaign_id": campaign_id, "step_id": step["id"],
            "contact_id": contact_id, "identity_id": self._identity_of[campaign_id], "channel": step["channel"],
            "event_type": event_type, "occurred_at": when})

    def sent(self, contact_id: str, campaign_id: str, positions: Iterable[int], first_day: float) -> None:
        """The steps at `positions` executed one a day, from `first_day`."""
        for i, position in enumerate(positions):
            self.event(contact_id, campaign_id, position, "sent", at(first_day + i))

    def tag(self, contact_id: str, name: str, category: str, when: pd.Timestamp) -> None:
        if name not in self._tags:
            self._tags[name] = f"tag{len(self._tags):03d}"
            self.rows["conversation_tags"].append({"id": self._tags[name], "name": name, "category": category})
        self.rows["contact_conversation_tags"].append({"contact_id": contact_id, "tag_id": self._tags[name],
                                                       "tagged_at": when})

    def tables(self) -> dict[str, pd.DataFrame]:
        frames = {}
        for table in ROLLUP_TABLES:
            frame = pd.DataFrame(self.rows[table], columns=COLUMNS[table])
            for column in frame.columns:
                if column in TIMESTAMPS:
                    frame[column] = pd.to_datetime(frame[column], utc=True)
                elif column == "position":
                    frame[column] = frame[column].astype("int64")
                else:
                    frame[column] = frame[column].astype(object)
            frames[table] = frame
        return frames
