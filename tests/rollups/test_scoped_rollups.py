"""The Enginy change sensor's runs rebuild the campaign rollups of only the contacts that may have
changed since its cursor and keep every other row; the next full build catches up with what such
a run cannot see."""

import pandas as pd
import pytest

from tests.rollups import reference
from tests.rollups.conftest import TARGETS, as_records, build_rollups, load_enginy
from tests.rollups.test_hand_built_rollups import data_set
from tests.rollups.test_incremental_events import built_once


@pytest.mark.parametrize("target", TARGETS)
def test_a_scoped_build_rebuilds_the_changed_contacts_and_keeps_the_others(target: str, tmp_path, request) -> None:
    data = data_set()
    with built_once(target, tmp_path, request) as warehouse:
        before = as_records(warehouse.read_table("campaign_rollups"))
        newest = max(e["occurred_at"] for e in data.rows["campaign_events"])
        since = newest + pd.Timedelta(minutes=30)
        data.event("opened", "cmp_a", 2, "sent", newest + pd.Timedelta(hours=1))  # after the cursor
        data.event("finished", "cmp_a", 2, "replied", newest - pd.Timedelta(days=1))  # late, in the staged window
        data.rows["campaign_contacts"] = [m for m in data.rows["campaign_contacts"] if m["contact_id"] != "thirteen"]
        for campaign in data.rows["campaigns"]:  # a rename no scoped run sees
            campaign["name"] += " (renamed)"
        tables = data.tables()
        load_enginy(warehouse, tables)
        expected = as_records(reference.rollups(tables).rename_axis("contact_id").reset_index())
        changed = {"opened", "finished", "thirteen"}
        assert all(expected[c] != before[c] for c in changed)

        scoped = build_rollups(warehouse, changed_since=since.isoformat())
        assert scoped.result.success, scoped.failed_checks()
        after = as_records(scoped.rollups)
        assert {c: after[c] for c in changed} == {c: expected[c] for c in changed}, "the changed contacts are rebuilt"
        listed = set(warehouse.read_table("rollup_changed_contacts")["contact_id"])
        assert changed <= listed and len(listed) < len(after)
        kept = [c for c in after if c not in listed]
        assert kept and all(after[c] == before[c] for c in kept), "the others keep their rows as they were"
        assert any(expected[c] != before[c] for c in kept), "(the rename, which only a full build sees)"
        by_campaign = warehouse.read_table("campaign_rollups_by_campaign")
        assert "thirteen" not in set(by_campaign["contact_id"]), "a contact out of every campaign loses its rows"

        full = build_rollups(warehouse)
        assert full.result.success, full.failed_checks()
        assert as_records(full.rollups) == expected, "the next full build catches up with every contact"
        assert warehouse.read_table("rollup_changed_contacts").empty
