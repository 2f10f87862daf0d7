"""Incremental snapshots: the overlap window and folding changes without missing or doubling rows."""

from datetime import date, datetime, timedelta, timezone

import pandas as pd
import pytest

from crm_pipelines.snapshot import backfill_window, fold_changes, next_window, records_by_day

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def frame(*rows: tuple[str, datetime, bool, str]) -> pd.DataFrame:
    return pd.DataFrame({
        "crm_id": [r[0] for r in rows],
        "last_modified": pd.to_datetime([r[1] for r in rows], utc=True),
        "is_deleted": [r[2] for r in rows],
        "email": [r[3] for r in rows],
    })


def test_a_first_pull_takes_everything_up_to_now() -> None:
    window = next_window(None, T0)
    assert window.since is None and window.until == T0


def test_the_next_pull_starts_before_the_cursor_to_catch_writes_made_during_the_last_one() -> None:
    window = next_window(T0, T0 + timedelta(hours=1), overlap=timedelta(minutes=5))
    assert window.since == T0 - timedelta(minutes=5)
    assert window.until == T0 + timedelta(hours=1)


def test_a_record_seen_again_in_the_overlap_is_kept_once() -> None:
    snapshot = frame(("a", T0, False, "a@x.com"), ("b", T0, False, "b@x.com"))
    changes = frame(("b", T0, False, "b@x.com"), ("c", T0, False, "c@x.com"))
    folded = fold_changes(snapshot, changes)
    assert folded["crm_id"].tolist() == ["a", "b", "c"]


def test_the_newest_version_wins_and_a_late_older_version_never_replaces_it() -> None:
    snapshot = frame(("a", T0 + timedelta(minutes=2), False, "new@x.com"))
    changes = frame(("a", T0, False, "old@x.com"))
    assert fold_changes(snapshot, changes)["email"].tolist() == ["new@x.com"]
    changes = frame(("a", T0 + timedelta(minutes=3), False, "newer@x.com"))
    assert fold_changes(snapshot, changes)["email"].tolist() == ["newer@x.com"]


def test_a_change_with_the_same_timestamp_replaces_the_snapshot_row() -> None:
    """Equal timestamps are the classic boundary case: the fresher read is the change."""
    snapshot = frame(("a", T0, False, "before@x.com"))
    changes = frame(("a", T0, False, "after@x.com"))
    assert fold_changes(snapshot, changes)["email"].tolist() == ["after@x.com"]


def test_a_deletion_stays_in_the_snapshot_flagged() -> None:
    snapshot = frame(("a", T0, False, "a@x.com"), ("b", T0, False, "b@x.com"))
    changes = frame(("a", T0 + timedelta(minutes=1), True, "a@x.com"))
    folded = fold_changes(snapshot, changes).set_index("crm_id")
    assert folded.loc["a", "is_deleted"] and not folded.loc["b", "is_deleted"]


def test_no_changes_leave_the_snapshot_as_it_was() -> None:
    snapshot = frame(("a", T0, False, "a@x.com"))
    pd.testing.assert_frame_equal(fold_changes(snapshot, frame()), snapshot)


def test_a_backfill_covers_whole_utc_days_and_stops_at_now() -> None:
    window = backfill_window(date(2026, 3, 1), date(2026, 3, 3), now=T0 + timedelta(days=30))
    assert window.since == datetime(2026, 3, 1, tzinfo=timezone.utc)
    assert window.until == datetime(2026, 3, 4, tzinfo=timezone.utc)
    assert backfill_window(date(2026, 3, 1), T0.date(), now=T0).until == T0


def test_a_backfill_ending_before_it_starts_says_how_to_fix_it() -> None:
    with pytest.raises(ValueError, match="backfill_from"):
        backfill_window(date(2026, 3, 3), date(2026, 3, 1), now=T0)


def test_records_are_counted_on_the_utc_day_they_were_last_modified_every_day_listed() -> None:
    changes = frame(("a", T0, False, "a@x.com"), ("b", T0 + timedelta(hours=13), True, None),
                    ("c", T0 - timedelta(days=2), False, "c@x.com"))
    assert records_by_day(changes, ["2026-02-28", "2026-03-01", "2026-03-02"]) == {
        "2026-02-28": {"records": 0, "deleted": 0}, "2026-03-01": {"records": 1, "deleted": 0},
        "2026-03-02": {"records": 1, "deleted": 1}}


def test_a_deletion_reported_by_id_only_keeps_what_was_known_about_the_record() -> None:
    snapshot = frame(("a", T0, False, "a@x.com"))
    changes = frame(("a", T0 + timedelta(minutes=1), True, None))
    folded = fold_changes(snapshot, changes)
    assert folded["email"].tolist() == ["a@x.com"]
    assert folded["is_deleted"].tolist() == [True]
    assert folded["last_modified"].tolist() == [pd.Timestamp(T0 + timedelta(minutes=1))]


def _pull(changes: pd.DataFrame):
    from crm_pipelines.crms.base import PullResult

    calls = []

    def pull(since, until, state):
        calls.append((since, until))
        return PullResult(changes, changes["last_modified"].max() if len(changes) else None)

    return pull, calls


def test_records_pulled_again_by_the_overlap_are_counted_as_already_held_not_as_updates() -> None:
    from crm_pipelines.snapshot import refresh_snapshot

    held = frame(("a", T0, False, "a@x.com"), ("b", T0, False, "b@x.com"))
    changes = frame(("a", T0, False, "a@x.com"), ("b", T0 + timedelta(minutes=1), False, "b2@x.com"),
                    ("c", T0 + timedelta(minutes=2), False, "c@x.com"))
    pull, _ = _pull(changes)
    refresh = refresh_snapshot(pull, held, T0, {}, now=T0 + timedelta(hours=1))
    assert (refresh.pulled, refresh.unchanged, refresh.created, refresh.updated) == (3, 1, 1, 1)


def test_a_first_ever_backfill_pulls_only_its_days_and_leaves_the_next_sync_to_pull_everything() -> None:
    from crm_pipelines.snapshot import refresh_snapshot

    pull, calls = _pull(frame(("a", T0, False, "a@x.com")))
    window = backfill_window(T0.date() - timedelta(days=3), T0.date(), now=T0 + timedelta(days=2))
    refresh = refresh_snapshot(pull, None, None, {}, now=T0 + timedelta(days=2), backfill=window)
    assert refresh.mode == "backfill" and calls == [(window.since, window.until)]
    assert refresh.cursor_after is None, "a cursor here would make the next sync skip every older record"
    assert len(refresh.snapshot) == 1
