"""One HTTP client for the CRMs spoken over plain JSON REST (Pipedrive, Zoho CRM, TribeCRM and
custom CRMs described in YAML), so no adapter carries its own copy of auth, retries, rate limits
or paging.

- **Auth** is data: an API key in a header or a query parameter (``ApiKey``), or a bearer token
  from a supplier that may refresh it (``BearerToken``: OAuth 2.0 with refresh tokens).
- **Retries** follow crm_pipelines.crms.wire.retries: 408/429/5xx and dropped connections are
  transient, with the CRM's Retry-After honoured; everything else fails at once as ``RestError``.
  A request that is not idempotent (a POST create) is retried only when the CRM said it did not
  act on it (429, 503) — after a dropped answer the write may have happened, so the caller
  decides (look the record up by its Enginy id, then create).
- **Rate-limit headers** (``RateLimitHeaders``): when the CRM reports its window spent, the next
  call waits for the window to reset instead of spending a 429.
- **Paging styles** are data (``CursorPaging``, ``PageNumberPaging``, ``OffsetPaging``,
  ``NextLinkPaging``); ``RestClient.pages`` walks any of them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Literal, Union

import requests

from crm_pipelines.crms.wire.retries import TRANSIENT_STATUSES, TransientCrmError, retry_after_seconds, with_retries

# Statuses a CRM sends when it did not act on the request: safe to send again even a create.
NOT_ACTED_ON = frozenset({429, 503})


class RestError(RuntimeError):
    """An answer the CRM gives to the request itself (validation, not found, auth): not retried."""

    def __init__(self, status: int, method: str, url: str, body: Any) -> None:
        self.status, self.body = status, body
        self.message = _error_message(body)
        super().__init__(f"{method} {url.split('?')[0]} answered {status}: {self.message}")


def _error_message(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("error", "message", "detail", "error_info", "errors"):
            value = body.get(key)
            if value:
                return value if isinstance(value, str) else str(value)[:500]
    return str(body)[:500]


# --- auth -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ApiKey:
    """An API key sent as a header (``x-api-token: …``) or a query parameter (``?api_token=…``)."""

    name: str
    value: str = field(repr=False)
    location: Literal["header", "query"] = "header"
    prefix: str = ""  # e.g. "Token " for ``Authorization: Token …``

    def apply(self, headers: dict[str, str], params: dict[str, Any]) -> None:
        if self.location == "header":
            headers[self.name] = f"{self.prefix}{self.value}"
        else:
            params[self.name] = self.value


@dataclass(frozen=True)
class BearerToken:
    """``Authorization: Bearer <token>`` from a supplier; on a 401 ``refresh`` (when given) is
    called once and the request sent again with the supplier's new token. ``scheme`` is the
    word before the token where a CRM has its own (Zoho: ``Zoho-oauthtoken``)."""

    token: Callable[[], str]
    refresh: Callable[[], None] | None = None
    scheme: str = "Bearer"

    def apply(self, headers: dict[str, str], params: dict[str, Any]) -> None:
        headers["Authorization"] = f"{self.scheme} {self.token()}"


Auth = Union[ApiKey, BearerToken, None]


# --- rate limits ------------------------------------------------------------------------------

@dataclass(frozen=True)
class RateLimitHeaders:
    """Where a CRM reports its rate-limit window, and how it writes the reset time."""

    limit: str = "x-ratelimit-limit"
    remaining: str = "x-ratelimit-remaining"
    reset: str = "x-ratelimit-reset"
    reset_unit: Literal["seconds", "epoch_seconds", "epoch_ms"] = "seconds"  # seconds: until the reset
    reserve: int = 0  # wait for the reset when this many calls or fewer are left

    def read(self, headers: requests.structures.CaseInsensitiveDict) -> "RateLimitState | None":
        remaining = _number(headers.get(self.remaining))
        if remaining is None:
            return None
        reset = _number(headers.get(self.reset))
        if reset is not None and self.reset_unit == "epoch_ms":
            reset = reset / 1000 - time.time()
        elif reset is not None and self.reset_unit == "epoch_seconds":
            reset = reset - time.time()
        return RateLimitState(_number(headers.get(self.limit)), remaining,
                              time.monotonic() + max(0.0, reset) if reset is not None else None)


@dataclass(frozen=True)
class RateLimitState:
    """The window as the CRM last reported it."""

    limit: float | None
    remaining: float
    resets_at: float | None  # time.monotonic() of the reset

    def seconds_to_reset(self) -> float | None:
        return None if self.resets_at is None else max(0.0, self.resets_at - time.monotonic())


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


# --- paging -----------------------------------------------------------------------------------

def dig(body: Any, path: str | None) -> Any:
    """``body`` at a dotted path ("additional_data.pagination.next_start"); a key that itself
    holds dots ("@odata.nextLink") is found whole first. An empty path is the body itself."""
    if not path:
        return body
    if isinstance(body, dict) and path in body:
        return body[path]
    head, _, rest = path.partition(".")
    if not rest or not isinstance(body, dict):
        return None
    return dig(body.get(head), rest)


@dataclass(frozen=True)
class Request:
    """One page's request: a URL (None: the listing's own) with its query parameters and body."""

    url: str | None
    params: dict[str, Any]
    body: dict[str, Any] | None


@dataclass(frozen=True)
class CursorPaging:
    """The answer names the next page's cursor (``next_cursor``); the request sends it back as
    a query parameter, or in the JSON body of a search."""

    records: str = "data"
    next_cursor: str = "additional_data.next_cursor"
    cursor_param: str = "cursor"
    limit_param: str = "limit"
    limit: int = 100
    in_body: bool = False

    def first(self, params: dict[str, Any], body: dict[str, Any] | None) -> Request:
        return self._with(params, body, None)

    def following(self, previous: Request, answer: Any, records: list[Any]) -> Request | None:
        cursor = dig(answer, self.next_cursor)
        return self._with(previous.params, previous.body, cursor) if cursor and records else None

    def _with(self, params: dict[str, Any], body: dict[str, Any] | None, cursor: Any) -> Request:
        target = dict(body or {}) if self.in_body else dict(params)
        target[self.limit_param] = self.limit
        if cursor is not None:
            target[self.cursor_param] = cursor
        return Request(None, params, target) if self.in_body else Request(None, target, body)


@dataclass(frozen=True)
class PageNumberPaging:
    """``?page=N&per_page=M``; the last page is the one that says so (``total_pages`` or a
    ``has_more`` flag), or the first one shorter than the page size."""

    records: str = "data"
    page_param: str = "page"
    size_param: str = "per_page"
    size: int = 100
    first_page: int = 1
    total_pages: str | None = None  # a path to the number of pages in the answer
    has_more: str | None = None  # a path to a boolean in the answer

    def first(self, params: dict[str, Any], body: dict[str, Any] | None) -> Request:
        return Request(None, {**params, self.page_param: self.first_page, self.size_param: self.size}, body)

    def following(self, previous: Request, answer: Any, records: list[Any]) -> Request | None:
        page = int(previous.params[self.page_param])
        if self.has_more is not None:
            more = bool(dig(answer, self.has_more))
        elif self.total_pages is not None:
            total = dig(answer, self.total_pages)
            more = total is not None and page - self.first_page + 1 < int(total)
        else:
            more = len(records) >= self.size
        return Request(None, {**previous.params, self.page_param: page + 1}, previous.body) if more and records \
            else None


@dataclass(frozen=True)
class OffsetPaging:
    """``?start=N&limit=M`` (Pipedrive v1, TribeCRM's ``$skip``/``$top``); the answer may say
    whether more follow and where the next page starts."""

    records: str = "data"
    offset_param: str = "start"
    limit_param: str = "limit"
    limit: int = 100
    has_more: str | None = "additional_data.pagination.more_items_in_collection"
    next_offset: str | None = "additional_data.pagination.next_start"

    def first(self, params: dict[str, Any], body: dict[str, Any] | None) -> Request:
        return Request(None, {**params, self.offset_param: 0, self.limit_param: self.limit}, body)

    def following(self, previous: Request, answer: Any, records: list[Any]) -> Request | None:
        more = bool(dig(answer, self.has_more)) if self.has_more else len(records) >= self.limit
        if not (more and records):
            return None
        given = dig(answer, self.next_offset) if self.next_offset else None
        offset = int(given) if given is not None else int(previous.params[self.offset_param]) + len(records)
        return Request(None, {**previous.params, self.offset_param: offset}, previous.body)


@dataclass(frozen=True)
class NextLinkPaging:
    """The answer carries the whole URL of the next page (OData's ``@odata.nextLink``, a
    ``links.next``); it already holds every parameter, so none are added."""

    records: str = "value"
    next_link: str = "@odata.nextLink"

    def first(self, params: dict[str, Any], body: dict[str, Any] | None) -> Request:
        return Request(None, params, body)

    def following(self, previous: Request, answer: Any, records: list[Any]) -> Request | None:
        link = dig(answer, self.next_link)
        return Request(str(link), {}, previous.body) if link else None


Paging = Union[CursorPaging, PageNumberPaging, OffsetPaging, NextLinkPaging]


@dataclass
class Page:
    records: list[Any]
    answer: Any  # the whole JSON answer (for what else the CRM sent with the page)


# --- the client -------------------------------------------------------------------------------

class RestClient:
    """A requests.Session bound to one CRM's base URL, auth, rate-limit headers and retries."""

    def __init__(self, base_url: str, auth: Auth = None, rate_limit: RateLimitHeaders | None = None,
                 headers: dict[str, str] | None = None, verify: str | bool | None = None, timeout: float = 60,
                 attempts: int = 6, max_seconds: float = 300, name: str = "the CRM") -> None:
        self.base_url = base_url.rstrip("/")
        self.auth, self.rate_limit, self.timeout = auth, rate_limit, timeout
        self.attempts, self.max_seconds, self.name = attempts, max_seconds, name
        # None: requests' own choice (REQUESTS_CA_BUNDLE, then the system's CAs).
        self.verify = verify
        self.session = requests.Session()
        self.session.headers.update({"Accept": "application/json", **(headers or {})})
        # A push may call from several threads at once (push_one_by_one): the counters and the
        # rate-limit window are shared under a lock, the last answer's status is per thread.
        self._lock = threading.Lock()
        self._local = threading.local()
        self.api_calls = 0
        self.waited_for_rate_limit = 0.0  # seconds spent waiting for a spent window to reset
        self.last_rate_limit: RateLimitState | None = None

    @property
    def last_status(self) -> int | None:
        """The status of this thread's last answer: an upsert says 201 for a create."""
        return getattr(self._local, "status", None)

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"

    def request(self, method: str, path: str, params: dict[str, Any] | None = None, json: Any = None,
                headers: dict[str, str] | None = None, idempotent: bool | None = None,
                data: dict[str, Any] | None = None) -> Any:
        """The JSON answer (None for an empty one), after retries; raises RestError for an answer
        that retrying cannot change and TransientCrmError when the retries are spent. ``data`` is
        a form body (an OAuth token request: secrets stay out of the URL)."""
        url = self.url(path)
        safe = method.upper() != "POST" if idempotent is None else idempotent

        def attempt() -> Any:
            try:
                response = self._send(method, url, params, json, headers, data)
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                if safe or isinstance(exc, requests.ConnectTimeout):
                    raise
                # The request may have been acted on before the connection dropped: not ours to retry.
                raise _Lost(UncertainWrite(f"{self.name}: {method} {url.split('?')[0]} lost its answer "
                                           f"({type(exc).__name__}); the write may have happened")) from exc
            status = response.status_code
            if status in TRANSIENT_STATUSES and (safe or status in NOT_ACTED_ON):
                raise TransientCrmError(status, f"{self.name} answered {status}", self._retry_after(response))
            if status in TRANSIENT_STATUSES:  # a 500 or 502 to a create: it may have been written
                raise _Lost(UncertainWrite(f"{self.name}: {method} {url.split('?')[0]} answered {status}; "
                                           "the write may have happened"))
            if status >= 400:
                raise RestError(status, method, url, _body(response))
            self._local.status = status
            return _body(response) if response.content else None

        try:
            return with_retries(attempt, attempts=self.attempts, max_seconds=self.max_seconds)
        except _Lost as lost:
            raise lost.error from lost.__cause__

    def _send(self, method: str, url: str, params: dict[str, Any] | None, json: Any,
              headers: dict[str, str] | None, data: dict[str, Any] | None = None) -> requests.Response:
        for refreshed in (False, True):
            self._wait_for_window()
            all_headers, all_params = dict(headers or {}), dict(params or {})
            if self.auth is not None:
                self.auth.apply(all_headers, all_params)
            with self._lock:
                self.api_calls += 1
            extra: dict[str, Any] = {} if self.verify is None else {"verify": self.verify}
            response = self.session.request(method, url, params=all_params, json=json, data=data,
                                            headers=all_headers, timeout=self.timeout, **extra)
            if self.rate_limit is not None:
                with self._lock:
                    self.last_rate_limit = self.rate_limit.read(response.headers) or self.last_rate_limit
            renewable = isinstance(self.auth, BearerToken) and self.auth.refresh is not None
            if response.status_code != 401 or refreshed or not renewable:
                return response
            self.auth.refresh()  # a token the CRM no longer takes: renew it once
        return response

    def _wait_for_window(self) -> None:
        # Under the lock: while one thread waits for a spent window, the others wait with it.
        with self._lock:
            state, rules = self.last_rate_limit, self.rate_limit
            if state is None or rules is None or state.remaining > rules.reserve:
                return
            wait = state.seconds_to_reset()
            if wait:
                time.sleep(min(wait, 120.0))
                self.waited_for_rate_limit += min(wait, 120.0)
            self.last_rate_limit = None  # the window has turned; the next answer reports the new one

    def _retry_after(self, response: requests.Response) -> float | None:
        given = retry_after_seconds(response.headers.get("Retry-After"))
        if given is None and self.rate_limit is not None:
            state = self.rate_limit.read(response.headers)
            given = state.seconds_to_reset() if state is not None else None
        return given

    def pages(self, path: str, paging: Paging, params: dict[str, Any] | None = None,
              body: dict[str, Any] | None = None, method: str = "GET",
              headers: dict[str, str] | None = None) -> Iterator[Page]:
        """Every page of a listing or search, in the CRM's paging style; ``headers`` go with every
        page (Zoho's If-Modified-Since)."""
        step: Request | None = paging.first(dict(params or {}), body)
        while step is not None:
            answer = self.request(method, step.url or path, params=step.params, json=step.body, headers=headers,
                                  idempotent=True)
            records = dig(answer, paging.records) or []
            yield Page(list(records), answer)
            step = paging.following(step, answer, records)


def create_once(find: Callable[[], str | None], create: Callable[[], str], update: Callable[[str], None],
                lookups: int = 4) -> tuple[str, bool]:
    """Create a record no more than once in a CRM without upserts: look for it (by its Enginy id)
    first and update what is found; when a create's answer is lost, look again rather than send
    it again. Returns (record id, whether this call created it)."""
    lost = False
    for _ in range(lookups):
        found = find()
        if found is not None:
            update(found)
            return found, lost  # found after our own create lost its answer: we created it
        try:
            return create(), True
        except UncertainWrite:
            lost = True
    raise TransientCrmError(None, f"the CRM lost the answer to {lookups} creates in a row")


class UncertainWrite(TransientCrmError):
    """A write whose answer was lost: it may or may not have happened. Sending it again blindly
    could create a record twice, so ``request`` does not; the caller looks (by the Enginy id)
    before it writes again, and may retry that look-then-write as a whole."""

    def __init__(self, message: str) -> None:
        super().__init__(None, message)


class _Lost(Exception):
    """Carries an UncertainWrite past the retry policy, which would otherwise send it again."""

    def __init__(self, error: UncertainWrite) -> None:
        super().__init__(str(error))
        self.error = error


def _body(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text
