"""A long step's progress lines: how many records are done, how fast, and how long is left."""

import time

from crm_pipelines.progress import Reading, pace


def test_pace_gives_the_rate_and_the_time_left_from_the_rate_so_far() -> None:
    started = time.monotonic() - 10  # ten seconds ago
    line = pace(2_000, 10_000, started)
    assert line.startswith("2,000 of 10,000 (200/s, about 40 s left)"), line
    assert pace(2_000, None, started) == "2,000 (200/s)", "no total: no time left to tell"


def test_a_pull_reports_every_so_many_pages() -> None:
    lines: list[str] = []
    reading = Reading(lines.append, "contacts", total=500, every=2, seconds=0)
    for pages in range(1, 6):
        reading.page(pages * 100, pages)
    assert len(lines) == 3 and lines[0].startswith("contacts: 200 of 500 (") and lines[1].endswith("in 4 pages")
    assert lines[2].startswith("contacts: 500 of 500 (") and lines[2].endswith("in 5 pages"), "the last page is told"


def test_a_fast_pull_reports_no_more_often_than_every_so_many_seconds() -> None:
    lines: list[str] = []
    reading = Reading(lines.append, "contacts", total=500, seconds=60)
    for pages in range(1, 6):
        reading.page(pages * 100, pages)
    assert [line.split(" (")[0] for line in lines] == ["contacts: 100 of 500", "contacts: 500 of 500"], \
        "the first page at once, then none for a minute but the last"
