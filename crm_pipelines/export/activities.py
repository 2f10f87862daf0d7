"""Campaign events as completed CRM activities — the seeds' "Call / Email Activity Synchronization"
(ZoomInfo Engage logs each one as a completed Task) and Zaplify's two switches (sync activities
at all; include the message sent).

Which events become activities (emails sent, LinkedIn messages and invitations sent, calls made),
on which CRM record (the contact or lead the Enginy contact matched, or the one the push created),
credited to whom (the campaign identity's CRM user, Step 4 of the integration config), with what
subject and description. Events of contacts the CRM does not hold yet are kept as waiting: the
next run logs them once their contact is matched or exported.

Each event is logged once, ever: its Enginy id is the activity's key — the write ledger's key and
a field on the CRM activity — so a re-run skips what the ledger holds as done, and a write whose
answer never came back is looked up in the CRM before it is sent again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from crm_pipelines.config import ActivitySync, UserMapping
from crm_pipelines.export.ledger import FINAL, Ledger, entries
from crm_pipelines.export.values import is_empty
from crm_pipelines.export.writes import KINDS, Activity, WriteResult
from crm_pipelines.frames import is_in, lookup
from crm_pipelines.progress import pace

PRODUCT = "Enginy"
# What the CRM shows, in one place: ZoomInfo Engage's "Engage: {Event} {EmailSubject}" and
# "Engage Call: {Subject}", with our product's name.
SUBJECTS = {
    "email": PRODUCT + ": Sent Email {subject}",
    "call": PRODUCT + " Call: {subject}",
    "linkedin_message": PRODUCT + ": LinkedIn Message Sent",
    "linkedin_connection_request": PRODUCT + ": LinkedIn Invitation Sent",
}
LEDGER_OBJECT = "activities"
ACTIVITY_COLUMNS = ["event_id", "contact_id", "step_type", "kind", "subject", "body", "description",
                    "occurred_at", "owner_id", "owner_rule", "crm_object", "crm_record_id", "status", "reason"]
WAITING_NEW = "the contact is not in the CRM yet: it is logged once the contact is exported"
WAITING_AMBIGUOUS = "the contact matches several CRM records: it is logged once the match is resolved"


@dataclass(frozen=True)
class Attribution:
    """Step 4's user mapping as it credits an activity: identity, then its Enginy user, then a CRM
    user with that user's email (how the export picks owners too), then the default owner."""

    user_mapping: UserMapping
    identity_users: dict[str, str]  # Enginy identity id → its Enginy user id
    enginy_user_emails: dict[str, str]  # Enginy user id → email
    crm_user_by_email: dict[str, str]  # lower-cased email → active CRM user id

    def _crm_user(self, value: str | None) -> str | None:
        """The mapping names CRM users by id or by email; an email no CRM user has names nobody."""
        if not value:
            return None
        return self.crm_user_by_email.get(value.lower()) if "@" in value else value

    def owner(self, identity_id: str | None) -> tuple[str | None, str]:
        """(CRM user id or None, the rule that chose it)."""
        mapping = self.user_mapping
        if identity_id and (owner := self._crm_user(mapping.identities.get(identity_id))):
            return owner, "identity"
        user = self.identity_users.get(identity_id or "")
        if user and (owner := self._crm_user(mapping.users.get(user))):
            return owner, "user"
        email = self.enginy_user_emails.get(user or "")
        if email and (owner := self.crm_user_by_email.get(email.lower())):
            return owner, "same_email"
        if owner := self._crm_user(mapping.default_owner):
            return owner, "default_owner"
        return None, "crm_default"


def crm_records(matches: pd.DataFrame, created: pd.DataFrame, same_as: pd.Series | None = None) -> pd.DataFrame:
    """Per Enginy contact: the CRM record it is (crm_object, crm_id) or why there is none (outcome).

    ``matches``: contact_matches; ``created``: the export ledger's contact and lead writes. A record
    the push created counts where matching has not seen it yet (the snapshot predates the push).
    ``same_as``: Enginy contact → the Enginy contact it is the same person as (a create the batch
    skipped for it): with no record of its own, a contact's activities go on that one's."""
    people = matches.assign(enginy_id=matches["enginy_id"].astype(str))
    people = people.assign(crm_object=people.get("crm_object", pd.Series("contacts", index=people.index))
                           .fillna("contacts"))[["enginy_id", "outcome", "crm_id", "crm_object"]]
    done = created[created["object"].isin(["contacts", "leads"]) & created["status"].isin(["created", "updated"])
                   & created["crm_id"].notna()]
    pushed = pd.DataFrame({"enginy_id": done["enginy_id"].astype(str), "outcome": "matched",
                           "crm_id": done["crm_id"].astype(str), "crm_object": done["object"]})
    # A matched record speaks first: it is what the CRM holds today; the push's own id fills the gaps.
    known = people[people["outcome"].eq("matched")]
    extra = pushed[~is_in(pushed["enginy_id"], known["enginy_id"])].drop_duplicates("enginy_id", keep="last")
    rest = people[~is_in(people["enginy_id"], known["enginy_id"]) & ~is_in(people["enginy_id"], extra["enginy_id"])]
    if same_as is not None and len(same_as) and len(rest):
        found = pd.concat([known, extra], ignore_index=True).drop_duplicates("enginy_id").set_index("enginy_id")
        other = rest["enginy_id"].map(lookup(same_as.index.astype(str), same_as.astype(str)))
        has = other.notna() & is_in(other.fillna(""), found.index.to_series())
        twins = rest[has].assign(outcome="matched", crm_id=found.loc[other[has], "crm_id"].to_numpy(object),
                                 crm_object=found.loc[other[has], "crm_object"].to_numpy(object))
        return pd.concat([known, extra, twins, rest[~has]], ignore_index=True)
    return pd.concat([known, extra, rest], ignore_index=True)


def unlogged_events_sql(events: str, ledger: str) -> str:
    """SQL (DuckDB and PostgreSQL) for the sent campaign events the activity ledger does not hold
    as done: after the first sync a run plans only these — new events and ones still waiting —
    not the million logged before. ``events``, ``ledger``: the tables' quoted names."""
    done = ", ".join(f"'{status}'" for status in FINAL)
    return (f"SELECT e.* FROM {events} AS e WHERE e.event_type = 'sent' AND NOT EXISTS ("
            f"SELECT 1 FROM {ledger} AS l WHERE l.write_id = CAST(e.id AS VARCHAR) "
            f"AND l.object = '{LEDGER_OBJECT}' AND l.status IN ({done}))")


def _text(values: pd.Series) -> pd.Series:
    """Each value as stripped text, NA where missing or blank."""
    text = values.astype("string").str.strip()
    return text.where(text.ne(""))


def _plain(values: pd.Series) -> pd.Series:
    """Object values with None for missing, as the activities the clients send carry them."""
    return values.astype(object).where(values.notna(), None)


def _subjects(step_type: pd.Series, subject: pd.Series, campaign: pd.Series) -> pd.Series:
    # A call carries no subject of its own in Enginy: the campaign names what it was about.
    text = _text(subject).fillna(_text(campaign).where(step_type.eq("call"))).fillna("")
    subjects = pd.Series("", index=step_type.index, dtype="string")
    for kind, template in SUBJECTS.items():
        rows = step_type.eq(kind)
        before, _, after = template.partition("{subject}")
        subjects[rows] = (before + text[rows] + after).str.strip() if "{subject}" in template else template.strip()
    return subjects.astype(object)


def _descriptions(body: pd.Series, campaign: pd.Series, position: pd.Series, with_body: bool) -> pd.Series:
    """The message (when the integration includes it), then the campaign and step it came from."""
    message = _text(body) if with_body else pd.Series(pd.NA, index=body.index, dtype="string")
    step = np.trunc(pd.to_numeric(position, errors="coerce")).astype("Int64").astype("string")
    origin = (PRODUCT + " campaign: " + campaign.astype("string") + (", step " + step).fillna("")).where(
        _text(campaign).notna())
    both = message + "\n\n" + origin
    return _plain(both.fillna(message).fillna(origin))


def plan_activities(events: pd.DataFrame, steps: pd.DataFrame, campaigns: pd.DataFrame, records: pd.DataFrame,
                    settings: ActivitySync, attribution: Attribution) -> pd.DataFrame:
    """One row per campaign event that is a CRM activity: ready (with its CRM record) or waiting.

    ``events``, ``steps``, ``campaigns``: the Enginy tables; ``records``: ``crm_records(...)``."""
    step = steps.assign(id=steps["id"].astype(str)).set_index("id")
    frame = events[events["event_type"].eq("sent")]
    if settings.since is not None:
        frame = frame[pd.to_datetime(frame["occurred_at"], utc=True) >= pd.Timestamp(settings.since, tz="UTC")]
    step_id = frame["step_id"].astype(str)
    frame = frame.assign(step_type=step_id.map(step["step_type"]), position=step_id.map(step["position"]),
                         contact_id=frame["contact_id"].astype(str), campaign_id=frame["campaign_id"].astype(str))
    frame = frame[frame["step_type"].isin(list(KINDS))].reset_index(drop=True)
    campaign = frame["campaign_id"].map(dict(zip(campaigns["id"].astype(str), campaigns["name"])))
    # The campaign's identity sent it; an event names the identity that acted, which wins.
    identity = frame["identity_id"].where(frame["identity_id"].notna(), frame["campaign_id"].map(
        dict(zip(campaigns["id"].astype(str), campaigns["identity_id"])))).fillna("").astype(str)
    credit = {i: attribution.owner(i or None) for i in identity.drop_duplicates()}
    record = frame[["contact_id"]].merge(records.drop_duplicates("enginy_id"), how="left", left_on="contact_id",
                                         right_on="enginy_id")
    ready = record["outcome"].eq("matched") & record["crm_id"].notna()
    with_body = settings.include_message_body
    owner = identity.map({i: c[0] for i, c in credit.items()})
    return pd.DataFrame({
        "event_id": frame["id"].astype(str), "contact_id": frame["contact_id"], "step_type": frame["step_type"],
        "kind": frame["step_type"].map(KINDS),
        "subject": _subjects(frame["step_type"], frame["subject"], campaign),
        "body": _plain(frame["body"].where(_text(frame["body"]).notna())) if with_body else None,
        "description": _descriptions(frame["body"], campaign, frame["position"], with_body),
        "occurred_at": pd.to_datetime(frame["occurred_at"], utc=True),
        "owner_id": _plain(owner), "owner_rule": identity.map({i: c[1] for i, c in credit.items()}),
        "crm_object": record["crm_object"].where(ready, None), "crm_record_id": record["crm_id"].where(ready, None),
        "status": ready.map({True: "ready", False: "waiting"}),
        "reason": pd.Series(np.where(record["outcome"].eq("ambiguous"), WAITING_AMBIGUOUS, WAITING_NEW),
                            dtype=object).where(~ready, None)}, columns=ACTIVITY_COLUMNS)


def _entries(ledger: pd.DataFrame, event_ids: pd.Series) -> pd.DataFrame:
    """The activity ledger's entry of each event (its id is the write id), indexed like
    ``event_ids``: every column empty where the ledger has none. One look-up for all columns."""
    held = ledger[ledger["object"].eq(LEDGER_OBJECT)] if len(ledger) else ledger.iloc[:0]
    return entries(held, event_ids).set_axis(event_ids.index)


def activities_to_send(planned: pd.DataFrame, ledger: pd.DataFrame) -> tuple[list[Activity], int]:
    """The ready rows the ledger does not hold as done, and how many it does."""
    ready = planned[planned["status"].eq("ready")]
    held = _entries(ledger, ready["event_id"])["status"]
    done = held.isin(FINAL)
    send = ready[~done.to_numpy()].assign(in_doubt=held[~done].notna().to_numpy())
    # A column at a time: pandas' to_dict of the plan boxed every value of every column.
    occurred = pd.to_datetime(send["occurred_at"], utc=True).dt.to_pydatetime().tolist()
    owners = [None if is_empty(o) else o for o in send["owner_id"].tolist()]
    columns = [send[c].tolist() for c in ("event_id", "step_type", "crm_object", "crm_record_id", "subject",
                                          "description")]
    activities = [Activity(*values, at, owner, in_doubt=bool(doubt))
                  for *values, at, owner, doubt in zip(*columns, occurred, owners, send["in_doubt"].tolist())]
    return activities, int(done.sum())


@dataclass
class ActivityPushOutcome:
    ledger: pd.DataFrame
    counts: dict[str, int]  # created / rejected / failed in this run
    sent: int
    already_done: int


def run_activity_push(log: Callable[[list[Activity]], list[WriteResult]], planned: pd.DataFrame,
                      ledger: pd.DataFrame, save: Callable[[pd.DataFrame], None], chunk: int | Callable[[int], int],
                      progress: Callable[[str], None] = lambda message: None) -> ActivityPushOutcome:
    """Log the ready activities chunk by chunk, the ledger saved before each chunk is sent and
    after its answers (``save`` gets the rows changed, for an upsert): a run killed anywhere leaves
    the next one knowing what may have landed. ``chunk``: activities per call of ``log``, or what
    it is given how many are pending (a CRM with a bulk API takes a whole job's worth)."""
    activities, already = activities_to_send(planned, ledger)
    chunk = chunk(len(activities)) if callable(chunk) else chunk
    counts: dict[str, int] = {}
    book = Ledger(ledger)
    started = time.monotonic()
    for start in range(0, len(activities), chunk):
        part = activities[start:start + chunk]
        save(book.mark_sent(LEDGER_OBJECT, part))
        results = log(part)
        save(book.record(results))
        for r in results:
            counts[r.status] = counts.get(r.status, 0) + 1
        progress(f"activities: chunk {start // chunk + 1} of {-(-len(activities) // chunk)} sent — "
                 f"{pace(start + len(part), len(activities), started)}")
    return ActivityPushOutcome(book.frame(), counts, len(activities), already)


def outcomes(planned: pd.DataFrame, ledger: pd.DataFrame) -> pd.DataFrame:
    """Every planned row with how it ended: logged / rejected / failed / pending / waiting, and the
    CRM activity's id; the message itself is left out (it may be private, and Enginy holds it)."""
    frame = planned.drop(columns=["body"])
    ready = frame["status"].eq("ready")
    entry = _entries(ledger, frame["event_id"])[["status", "crm_id", "error"]].astype(object)
    # "sent" without an answer: the run died; the next run looks the activity up before sending.
    ended = entry["status"].map({"created": "logged", "updated": "logged", "rejected": "rejected",
                                 "failed": "failed", "sent": "failed"}).fillna("pending")
    return frame.assign(status=frame["status"].where(~ready, ended),
                        reason=frame["reason"].where(~ready, entry["error"]),
                        crm_activity_id=entry["crm_id"].where(ready, None))
