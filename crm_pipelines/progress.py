"""How far a long step is, in the words its log uses: records done, records a second, and about
how long is left when the total is known. Pulls, pushes and activity pushes all report this way."""

from __future__ import annotations

import math
import time
from typing import Callable


def per_second(done: int, started: float) -> float:
    """Records a second since ``started`` (a time.monotonic() reading)."""
    return done / max(time.monotonic() - started, 1e-6)


def pace(done: int, total: int | None, started: float) -> str:
    """``done`` (of ``total`` when known), records a second, and when known about how long is left."""
    rate = per_second(done, started)
    if total is None:
        return f"{done:,} ({rate:,.0f}/s)"
    left = max(total - done, 0) / rate if rate else 0
    return f"{done:,} of {total:,} ({rate:,.0f}/s, about {left:,.0f} s left)"


# A long step's progress reaches the run's log at most this often. Each line is a Dagster event (a
# write to the instance's event log): a line every twenty pages or batch calls of a million-record
# HubSpot pull or push was five hundred of them, about ten seconds of the step's own time.
PROGRESS_SECONDS = 10.0


class Throttle:
    """Whether a progress line is due: the first at once, then one every ``seconds`` at most."""

    def __init__(self, seconds: float = PROGRESS_SECONDS) -> None:
        self.seconds, self.last = seconds, -math.inf

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.last < self.seconds:
            return False
        self.last = now
        return True


class Reading:
    """A long pull's progress: every ``every`` pages, ``seconds`` apart at least, and at the last
    page of a known total, ``what`` with the records read so far, their rate and, where the CRM
    said how many there are, about how long is left."""

    def __init__(self, report: Callable[[str], None], what: str, total: int | None = None, every: int = 1,
                 seconds: float = PROGRESS_SECONDS) -> None:
        self.report, self.what, self.total, self.every = report, what, total, every
        self.started, self.throttle = time.monotonic(), Throttle(seconds)

    def page(self, read: int, pages: int) -> None:
        """``read`` records so far, in ``pages`` pages."""
        done = self.total is not None and read >= self.total  # the last page of a known total: always told
        if done or (pages % self.every == 0 and self.throttle.due()):
            self.report(f"{self.what}: {pace(read, self.total, self.started)} records read in {pages:,} "
                        f"{'page' if pages == 1 else 'pages'}")
