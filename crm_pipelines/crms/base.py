"""The CrmClient protocol: what every CRM resource offers, and the capabilities a CRM may add.

Assets speak only this protocol, so the snapshot, matching, export and push assets are the
same for every CRM; each adapter hides its CRM's wire protocol behind it. A client may also say
how its CRM links records, with attributes the export reads (absent means False):
``contacts_link_many_companies`` (a contact can hang on several companies: HubSpot) and
``leads_link_to_companies`` (a lead hangs on an organization: Pipedrive); and count its calls in
``api_calls`` for the push's metadata.

Optional capabilities are declared in the CRM's facts (``CrmFacts.capabilities``, so the registry
answers without loading a client) and asked of the client as follows:

- ``Capability.LEADS``: ``pull``, ``describe`` and ``push`` take the object "leads".
- ``Capability.ACTIVITIES``: the client is an ``ActivityLogging``.
- ``Capability.BULK``: the client is a ``BulkApi``; the push hands it as many writes at once as
  its bulk API takes in one job, records each job's id before its data goes, and resumes a
  killed push from its jobs' results.
- ``Capability.CHANGE_TRACKING``: ``pull`` keeps the CRM's change token in ``PullResult.state``
  and, given it back, answers what changed since, deletions included.
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Literal, Protocol, TypeVar, runtime_checkable

import dagster as dg
import pandas as pd

from crm_pipelines.export.writes import Activity, Write, WriteResult
from crm_pipelines.progress import Throttle

CrmObject = Literal["contacts", "companies", "leads", "users"]
# Where a client reports progress on a long pull (the asset points it at the run's log).
Progress = Callable[[str], None]
# A long pull reports progress every this many pages.
PROGRESS_EVERY = 20


@dataclass(frozen=True)
class CrmField:
    """One field as the CRM describes it (for field mapping review and value coercion)."""

    name: str
    label: str
    type: str  # the CRM's own type name: picklist, string, enumeration, number, …
    createable: bool
    updateable: bool
    required: bool = False
    options: tuple[str, ...] = ()  # internal values of a picklist / enumeration
    option_labels: tuple[str, ...] = ()
    unique: bool = False
    external_id: bool = False
    # The longest text the field holds, where the CRM says: a longer value is rejected before the
    # push, with its reason, instead of being sent and refused again on every run.
    length: int | None = None


@dataclass
class PullResult:
    """Changed records of one object in a time window, as canonical frames."""

    records: pd.DataFrame  # canonical (crm_pipelines.canonical), is_deleted marks deletions
    cursor: datetime | None  # the greatest modification time seen; the next pull starts there
    api_calls: int = 0
    pages: int = 0
    # What the next incremental pull needs beyond the cursor (Dataverse's delta link, …).
    state: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # e.g. "window split in 4 (search cap)"
    # A CRM that deletes for good and lists no deletions (TribeCRM): every id it still holds, so
    # the snapshot can mark the records missing from it deleted. None: deletions are in records.
    live_ids: set[str] | None = None


@runtime_checkable
class CrmClient(Protocol):
    crm: str
    progress: Progress

    def pull(self, obj: CrmObject, since: datetime | None, until: datetime | None,
             state: dict[str, Any] | None = None) -> PullResult:
        """Records of ``obj`` modified in [since, until), deletions included where the CRM can
        tell; since=None: all. ``state`` is what the previous pull's result carried."""

    def latest_change(self, obj: CrmObject, since: datetime | None) -> datetime | None:
        """The newest modification time of ``obj`` strictly after ``since`` (since=None: any), or
        None when nothing changed. One cheap call — a one-row query sorted by the modification
        timestamp — because the change sensor asks it every few minutes."""

    def describe(self, obj: CrmObject) -> list[CrmField]:
        """The object's fields with types, options and whether they can be written."""

    def users(self) -> pd.DataFrame:
        """CRM users as a canonical CrmUser frame."""

    @property
    def enginy_id_field(self) -> str:
        """The CRM field holding Enginy's id on records the push created."""

    def push(self, obj: CrmObject, writes: list[Write]) -> list[WriteResult]:
        """Send writes in batches at the CRM's ceiling; one result per write, in any order."""


@runtime_checkable
class ActivityLogging(Protocol):
    """An optional capability of a CrmClient: campaign activities logged as completed CRM
    activities. A CRM without it is reported as not supported by the activity push."""

    def log_activities(self, activities: list[Activity]) -> list[WriteResult]:
        """Create each activity once, in batches at the CRM's ceiling; one result per activity,
        in order. An activity the CRM already holds (by its key) comes back created with its id."""


@runtime_checkable
class BulkApi(Protocol):
    """An optional capability of a CrmClient: big pushes go through the CRM's bulk API as jobs."""

    def writes_per_push(self, pending: int) -> int:
        """How many writes of one object to hand ``push`` at once when ``pending`` are to be sent:
        a whole bulk job's worth when there are enough to go through the bulk API, otherwise one
        synchronous call's worth."""

    def activities_per_push(self, pending: int) -> int:
        """The same for activities (of a CRM that logs them): how many to hand ``log_activities``
        at once."""

    def push(self, obj: CrmObject, writes: list[Write],
             job_started: Callable[[str, list[Write]], None] | None = None) -> list[WriteResult]:
        """``CrmClient.push``, calling ``job_started`` with each bulk job's id and its writes
        before the job's data is uploaded (the push records it in its ledger)."""

    def bulk_job_results(self, obj: CrmObject, job_id: str, writes: list[Write]) -> list[WriteResult]:
        """The answers a bulk job a killed push left behind holds for its writes (all of one
        action); writes it has no answer for are left out, and are sent again. A job that could
        still take data is stopped first, so it never lands after the resend."""


def push_one_by_one(obj: str, writes: list[Write], send: Callable[[Write], WriteResult],
                    progress: Progress, parallel: int = 1) -> list[WriteResult]:
    """Each write in a call of its own, for APIs that write one record a call, up to ``parallel``
    calls at once (a real CRM answers in a few hundred milliseconds: calls one after another
    leave the push waiting on the network); the results in the writes' order, with progress."""
    results: list[WriteResult] = []
    throttle = Throttle()

    def done(result: WriteResult) -> None:
        results.append(result)
        if len(results) % PROGRESS_EVERY == 0 and throttle.due():
            progress(f"{obj}: {len(results):,} of {len(writes):,} writes sent")

    # The first write alone: what the client reads once and keeps (field keys, the description)
    # is read by one call, not by every thread at once.
    for write in writes[:1]:
        done(send(write))
    if parallel <= 1:
        for write in writes[1:]:
            done(send(write))
        return results
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix=f"push-{obj}") as pool:
        for result in pool.map(send, writes[1:]):
            done(result)
    return results


Batch = TypeVar("Batch")


def push_in_parallel(batches: list[Batch], send: Callable[[Batch], list[WriteResult]], parallel: int,
                     progress: Callable[[int], None], thread_name: str) -> list[WriteResult]:
    """Each batch handed to ``send``, up to ``parallel`` batch calls at once (a CRM runs batches
    side by side; one after another leaves the push waiting on the network); the results in the
    batches' order. ``progress`` hears how many results are in every PROGRESS_EVERY batches, no
    more often than a progress line is due (see progress.Throttle), and after the last (each line is
    a Dagster event: one a batch would flood a million-row run's log)."""
    results: list[WriteResult] = []
    throttle = Throttle()
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(batches))), thread_name_prefix=thread_name) as pool:
        for done, answered in enumerate(pool.map(send, batches), 1):
            results.extend(answered)
            if done == len(batches) or (done % PROGRESS_EVERY == 0 and throttle.due()):
                progress(len(results))
    return results


class CrmResource(dg.ConfigurableResource):
    """Base of every CRM's resource: configuration in, a CrmClient out."""

    def client(self) -> CrmClient:
        raise NotImplementedError


UI_COMMAND = ".venv/bin/crm-pipelines ui"


class CrmNotConnected(dg.Failure):
    """The CRM's credentials are not in the environment: one line that says which and how to fix it."""


class CrmCredentialsMissing(CrmResource):
    """Stands for a CRM whose required environment variables were not set when the code location
    loaded, so that a run, a sensor tick or a backfill touching the CRM fails with one line naming
    them (a resource bound to an unset dg.EnvVar fails with a configuration error and its stack)."""

    crm: str
    variables: list[str]

    def client(self) -> CrmClient:
        raise CrmNotConnected(
            f"{self.crm} is not connected: {', '.join(self.variables)} not set — fix: start the UI with "
            f"`{UI_COMMAND}` (it serves the sandbox CRM and sets them), or export them for your {self.crm} "
            "before starting Dagster", allow_retries=False)
