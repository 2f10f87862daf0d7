"""HubSpot's API limits for a private app: a rolling ten-second burst limit and a daily limit
for most endpoints (reported in X-HubSpot-RateLimit-* headers), and a separate per-second limit
for search, which reports no headers. Past a limit HubSpot answers 429 with its own body.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

# Professional / Enterprise private-app figures; tests and benches lower or lift them through
# the settings (PATCH /_sandbox/settings/hubspot).
DEFAULTS: dict[str, Any] = {
    "burst_limit": 190,  # calls per rolling window, per app
    "burst_window_ms": 10_000,
    "daily_limit": 1_000_000,
    "search_per_second": 5,
}


@dataclass
class _Window:
    calls: deque[float] = field(default_factory=deque)

    def admit(self, now: float, limit: int, window: float) -> tuple[bool, int]:
        """Record a call if it fits; (admitted, calls left in the window)."""
        while self.calls and self.calls[0] <= now - window:
            self.calls.popleft()
        if len(self.calls) >= limit:
            return False, 0
        self.calls.append(now)
        return True, limit - len(self.calls)


@dataclass
class Limiter:
    burst: _Window = field(default_factory=_Window)
    search: _Window = field(default_factory=_Window)
    daily_used: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class RateLimited(Exception):
    def __init__(self, policy: str, message: str, headers: dict[str, str]) -> None:
        super().__init__(message)
        self.policy, self.message, self.headers = policy, message, headers


def setting(settings: dict[str, Any], name: str) -> Any:
    return settings.get(name, DEFAULTS[name])


def admit(limiter: Limiter, settings: dict[str, Any], is_search: bool) -> dict[str, str]:
    """Count one call; answers the headers to send, or raises RateLimited."""
    now = time.monotonic()
    with limiter.lock:
        daily = int(setting(settings, "daily_limit"))
        if limiter.daily_used >= daily:
            raise RateLimited("DAILY", "You have reached your daily limit.", _headers(settings, limiter, 0))
        if is_search:
            per_second = setting(settings, "search_per_second")
            if per_second is not None:
                admitted, _ = limiter.search.admit(now, int(per_second), 1.0)
                if not admitted:
                    raise RateLimited("SECONDLY", "You have reached your secondly limit.", {})
            limiter.daily_used += 1
            return {}
        limit = setting(settings, "burst_limit")
        remaining = 0
        if limit is not None:
            admitted, remaining = limiter.burst.admit(now, int(limit), int(setting(settings, "burst_window_ms")) / 1000)
            if not admitted:
                raise RateLimited("TEN_SECONDLY_ROLLING", "You have reached your ten_secondly_rolling limit.",
                                  _headers(settings, limiter, 0))
        limiter.daily_used += 1
        return _headers(settings, limiter, remaining)


def _headers(settings: dict[str, Any], limiter: Limiter, remaining: int) -> dict[str, str]:
    limit = setting(settings, "burst_limit")
    daily = int(setting(settings, "daily_limit"))
    headers = {"X-HubSpot-RateLimit-Daily": str(daily),
               "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, daily - limiter.daily_used))}
    if limit is not None:
        headers.update({"X-HubSpot-RateLimit-Interval-Milliseconds": str(setting(settings, "burst_window_ms")),
                        "X-HubSpot-RateLimit-Max": str(limit),
                        "X-HubSpot-RateLimit-Remaining": str(remaining)})
    return headers
