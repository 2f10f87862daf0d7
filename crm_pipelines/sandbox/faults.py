"""Fault injection and call accounting for the sandbox.

A fault rule says which calls it hits (CRM, endpoint template, method), what it does
(an HTTP status such as 429 or 503 with optional Retry-After, added latency, a dropped
connection) and when (every call with a probability, or only the Nth matching call).
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from typing import Any, Literal

from pydantic import BaseModel, Field


class FaultRule(BaseModel):
    crm: str | None = None  # None: any CRM
    endpoint: str | None = None  # route template, e.g. "/services/data/{version}/composite/sobjects"
    method: str | None = None
    kind: Literal["status", "latency", "drop"] = "status"
    status: int = 503
    retry_after: int | None = None  # seconds, sent as the Retry-After header with a status fault
    body: Any = None  # JSON body for a status fault; the CRM module's error shape when None
    latency_ms: int = 0
    rate: float = Field(1.0, ge=0.0, le=1.0)
    nth: int | None = Field(None, ge=1, description="hit only the Nth matching call (1-based)")
    times: int | None = Field(None, ge=1, description="stop after hitting this many calls")
    seen: int = 0
    hits: int = 0

    def matches(self, crm: str, endpoint: str, method: str) -> bool:
        return ((self.crm is None or self.crm == crm)
                and (self.endpoint is None or self.endpoint == endpoint)
                and (self.method is None or self.method.upper() == method.upper()))


class Faults:
    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._random = random.Random(seed)
        # The calls each fault met: (crm, method, endpoint template, "drop" or the status), for a
        # drill to show where its faults landed (a lost answer on a write, not only on reads).
        self.met: Counter[tuple[str, str, str, str]] = Counter()

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self._rules.append(rule)
            return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self.met.clear()

    def reseed(self, seed: int) -> None:
        """Draw rate-based hits from ``seed`` again: a drill on a shared sandbox hits the same calls
        whichever tests ran before it."""
        with self._lock:
            self._random = random.Random(seed)

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return [r.model_copy() for r in self._rules]

    def pick(self, crm: str, endpoint: str, method: str) -> FaultRule | None:
        """The first rule that fires for this call, counting the call against every match."""
        with self._lock:
            fired = None
            for rule in self._rules:
                if not rule.matches(crm, endpoint, method):
                    continue
                rule.seen += 1
                if fired is not None or (rule.times is not None and rule.hits >= rule.times):
                    continue
                if rule.nth is not None:
                    hit = rule.seen == rule.nth
                else:
                    hit = self._random.random() < rule.rate
                if hit:
                    rule.hits += 1
                    fired = rule.model_copy()
                    self.met[(crm, method, endpoint, "drop" if rule.kind == "drop" else str(rule.status))] += 1
            return fired


class Stats:
    """Calls and records per (crm, method, endpoint template); exact, for tests and benches."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[tuple[str, str, str]] = Counter()
        self.records: Counter[tuple[str, str, str]] = Counter()
        self.statuses: Counter[tuple[str, int]] = Counter()
        # (crm, started, ended) wall-clock times of each answered call, when a bench asks for them
        # (a list, not None): what part of a step was spent waiting on the CRM.
        self.spans: list[tuple[str, float, float, int]] | None = None  # crm, started, ended, status
        # Calls being answered now, and the most at once, per CRM: what a client's concurrency is.
        self.in_flight: Counter[str] = Counter()
        self.peak_in_flight: Counter[str] = Counter()

    def call_started(self, crm: str) -> None:
        with self._lock:
            self.in_flight[crm] += 1
            self.peak_in_flight[crm] = max(self.peak_in_flight[crm], self.in_flight[crm])

    def call_ended(self, crm: str) -> None:
        with self._lock:
            self.in_flight[crm] -= 1

    def count_call(self, crm: str, method: str, endpoint: str) -> None:
        with self._lock:
            self.calls[(crm, method, endpoint)] += 1

    def count_records(self, crm: str, method: str, endpoint: str, n: int) -> None:
        with self._lock:
            self.records[(crm, method, endpoint)] += n

    def count_status(self, crm: str, status: int) -> None:
        with self._lock:
            self.statuses[(crm, status)] += 1

    def record_span(self, crm: str, started: float, ended: float, status: int) -> None:
        if self.spans is not None:
            with self._lock:
                self.spans.append((crm, started, ended, status))

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.records.clear()
            self.statuses.clear()
            self.peak_in_flight.clear()

    def as_json(self) -> dict[str, Any]:
        with self._lock:
            return {
                "calls": [{"crm": c, "method": m, "endpoint": e, "count": n}
                          for (c, m, e), n in sorted(self.calls.items())],
                "records": [{"crm": c, "method": m, "endpoint": e, "count": n}
                            for (c, m, e), n in sorted(self.records.items())],
                "statuses": [{"crm": c, "status": s, "count": n}
                             for (c, s), n in sorted(self.statuses.items())],
                "total_calls": sum(self.calls.values()),
                "peak_in_flight": dict(sorted(self.peak_in_flight.items())),
                **({"spans": [{"crm": c, "started": s, "ended": e, "status": status}
                              for c, s, e, status in self.spans]}
                   if self.spans is not None else {}),
            }

    def total_calls(self, crm: str | None = None) -> int:
        with self._lock:
            return sum(n for (c, _, _), n in self.calls.items() if crm is None or c == crm)
