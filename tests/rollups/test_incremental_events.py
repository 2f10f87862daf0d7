"""The event staging is incremental: later builds take only the recent window of events, yet the
staged table and the rollups stay equal to a full rebuild as events arrive — late ones too — or
disappear from the source."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

from crm_pipelines.resources.warehouse import Warehouse
from tests.rollups import reference
from tests.rollups.builder import at
from tests.rollups.conftest import TARGETS, as_records, build_rollups, copy_of, load_enginy, warehouse_on
from tests.rollups.test_hand_built_rollups import data_set


def _staged_ids(built) -> list[str]:
    return sorted(built.table("stg_enginy__campaign_events")["event_id"])


def _assert_rollups_follow_the_rules(built, tables: dict[str, pd.DataFrame]) -> None:
    assert built.result.success, built.failed_checks()
    expected = as_records(reference.rollups(tables).rename_axis("contact_id").reset_index())
    assert as_records(built.rollups) == expected


@contextmanager
def built_once(target: str, directory: Path, request: pytest.FixtureRequest) -> Iterator[Warehouse]:
    """A warehouse holding the hand-built data set and its rollups, built once: on DuckDB a copy
    of the file built once per test run, on PostgreSQL a new schema built here."""
    if target == "duckdb":
        yield copy_of(request.getfixturevalue("hand_built_on_duckdb"), directory)
        return
    with warehouse_on(target, directory) as warehouse:
        load_enginy(warehouse, data_set().tables())
        assert build_rollups(warehouse).result.success
        yield warehouse


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
def test_arriving_late_and_deleted_events_leave_the_staging_equal_to_the_source(target: str, tmp_path,
                                                                                 request) -> None:
    data = data_set()
    with built_once(target, tmp_path, request) as warehouse:

        newest = max(e["occurred_at"] for e in data.rows["campaign_events"])
        data.event("opened", "cmp_a", 2, "sent", newest + pd.Timedelta(hours=1))  # a new event
        data.event("opened", "cmp_a", 2, "opened", newest - pd.Timedelta(days=1))  # a late one, inside the window
        tables = data.tables()
        load_enginy(warehouse, tables)
        second = build_rollups(warehouse)
        _assert_rollups_follow_the_rules(second, tables)
        assert _staged_ids(second) == sorted(tables["campaign_events"]["id"])
        assert as_records(second.rollups)["opened"]["campaign_engagement_status"] == "Message Sent (2/3) - Email"

        # Events deleted at the source, long before the window: the guard takes every event
        # again and drops the ones that are gone.
        events = tables["campaign_events"]
        tables["campaign_events"] = events[~events["contact_id"].isin(["finished", "thirteen"])]
        load_enginy(warehouse, tables)
        third = build_rollups(warehouse)
        _assert_rollups_follow_the_rules(third, tables)
        assert _staged_ids(third) == sorted(tables["campaign_events"]["id"])
        assert as_records(third.rollups)["finished"]["sequence_status"] == "Not Started"


def test_a_later_build_reads_only_the_recent_window_of_events(tmp_path, request) -> None:
    """What makes it pay: an event older than the window is not read again (the contract says
    events are never edited; `dbt build --full-refresh` rebuilds the table if one ever is)."""
    data = data_set()
    with built_once("duckdb", tmp_path, request) as warehouse:
        tables = data.tables()

        events = tables["campaign_events"]
        old = events.index[(events["occurred_at"] < at(5)) & events["identity_id"].ne("id_jordi")][0]
        recent = events["occurred_at"].idxmax()
        events.loc[[old, recent], "identity_id"] = "id_jordi"
        load_enginy(warehouse, tables)
        second = build_rollups(warehouse)
        assert second.result.success
        staged = second.table("stg_enginy__campaign_events").set_index("event_id")["identity_id"]
    assert events.at[recent, "occurred_at"] - events.at[old, "occurred_at"] > pd.Timedelta(days=3)
    assert staged[events.at[recent, "id"]] == "id_jordi"
    assert staged[events.at[old, "id"]] != "id_jordi"
