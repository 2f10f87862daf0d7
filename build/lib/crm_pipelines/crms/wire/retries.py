"""One retry policy for every CRM call: back off on 429 and 5xx, honour Retry-After.

Each adapter turns its client's error for a transient answer into ``TransientCrmError``
(with the Retry-After the CRM sent); everything else fails at once, because retrying a
validation error only spends API quota.
"""

from typing import Callable, TypeVar

import requests
from tenacity import (
    RetryCallState, retry, retry_if_exception_type, stop_after_attempt, stop_after_delay, wait_random_exponential,
)

T = TypeVar("T")

TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class TransientCrmError(Exception):
    def __init__(self, status: int | None, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


def retry_after_seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to exponential backoff


# What a call may fail with and still succeed when tried again (after the retries are spent, the
# push marks such writes failed, and the next run sends them again).
TRANSIENT_ERRORS = (TransientCrmError, requests.ConnectionError, requests.Timeout,
                    requests.exceptions.ChunkedEncodingError)

_backoff = wait_random_exponential(multiplier=0.2, max=30)


def _wait(state: RetryCallState) -> float:
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, TransientCrmError) and error.retry_after is not None:
        return min(error.retry_after, 120.0)
    return _backoff(state)


def with_retries(fn: Callable[[], T], attempts: int = 6, max_seconds: float = 300) -> T:
    """Call ``fn`` until it succeeds, a non-transient error occurs, or the budget is spent."""
    policy = retry(
        # A connection dropped mid-answer reaches requests as ChunkedEncodingError, not ConnectionError.
        retry=retry_if_exception_type(TRANSIENT_ERRORS),
        wait=_wait, stop=stop_after_attempt(attempts) | stop_after_delay(max_seconds), reraise=True,
    )
    return policy(fn)()
