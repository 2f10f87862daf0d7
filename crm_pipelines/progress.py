"""How far a long step is, in the words its log uses: records done, records a second, and about
how long is left when the total is known. Pulls, pushes and activity pushes all report this way."""

from __future__ import annotations

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


class Reading:
    """A long pull's progress: every ``every`` pages, ``what`` with the records read so far, their
    rate and, where the CRM said how many there are, about how long is left."""

    def __init__(self, report: Callable[[str], None], what: str, total: int | None = None, every: int = 1) -> None:
        self.report, self.what, self.total, self.every = report, what, total, every
        self.started = time.monotonic()

    def page(self, read: int, pages: int) -> None:
        """``read`` records so far, in ``pages`` pages."""
        if pages % self.every == 0:
            self.report(f"{self.what}: {pace(read, self.total, self.started)} records read in {pages:,} "
                        f"{'page' if pages == 1 else 'pages'}")
