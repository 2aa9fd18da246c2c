"""A thin client for the Heroku Platform API formation endpoints.

The caller owns the ``httpx.Client`` (base URL, timeout, transport); this module owns the protocol:
headers, pagination, bounded retries and mapping failures onto ``errors.HerokuError``. No logging.

Every attempt, the first and each retry, first asks the caller's ``may_send`` guard: a copy that
can no longer prove it leads, or that has been told to stop, sends nothing more. Only server
failures and timeouts are retried within a call, never a 429 (the bucket refills at about one
token a second; the caller pauses instead), and never sooner than a ``Retry-After`` asks.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from dynomatic_daemon import __version__
from dynomatic_daemon.errors import (
    HerokuError,
    HerokuHeldBackError,
    HerokuUnavailableError,
)
from dynomatic_daemon.heroku_wire import (
    checked,
    entry,
    error_body,
    error_class,
    int_or_none,
    retry_after,
    update_item,
)
from dynomatic_daemon.models import Formation, FormationEntry, FormationUpdate

ACCEPT = "application/vnd.heroku+json; version=3"
USER_AGENT = f"dynomatic-daemon/{__version__} httpx/{httpx.__version__}"
# Ask for the largest page up front (as node-heroku-client does), so pagination stays theoretical.
FIRST_RANGE = "id ..; max=1000"
# A formation has one entry per Procfile type; more pages than this means a server loop.
MAX_PAGES = 20
MAX_BACKOFF_SECONDS = 30.0
# A Retry-After longer than this is not waited out inside one call: the caller pauses instead.
MAX_RETRY_AFTER_IN_CALL_SECONDS = 10.0
_REDACTED = "[redacted]"

# The newest release only: Heroku lists releases by version, oldest first, unless asked.
NEWEST_RELEASE_RANGE = "version ..; order=desc, max=1"

MaySend = Callable[[], str | None]  # why not to send now, or None to go ahead


class Budget(Protocol):
    """A token's request budget shared with other apps (``api_budget.AppBudget``)."""

    def spend(self) -> str | None: ...  # take one request: why not, or None to go ahead

    def seen(self, remaining: int | None) -> None: ...  # what RateLimit-Remaining said


@dataclass(frozen=True, slots=True)
class Release:
    """The app's newest release: a deploy, a config change, a rollback."""

    version: int
    created_at: datetime
    description: str
    status: str


@dataclass(frozen=True, slots=True)
class FormationResult:
    """What one call saw: the entries it returned plus the response metadata worth logging."""

    formation: Formation
    request_id: str | None
    rate_limit_remaining: int | None


class HerokuClient:
    """List and batch-update one app's formation over an injected ``httpx.Client``."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        app: str,
        api_key: str,
        max_retries: int = 2,
        sleep: Callable[[float], object] = time.sleep,
        backoff_seconds: float = 0.5,
        instance: str | None = None,
        budget: Budget | None = None,
    ) -> None:
        if max_retries < 0 or backoff_seconds < 0:
            raise ValueError("max_retries and backoff_seconds must be >= 0")
        self._http = http
        self._app = app
        self.__api_key = api_key
        self._path = f"/apps/{quote(app, safe='')}/formation"
        self._releases_path = f"/apps/{quote(app, safe='')}/releases"
        self._max_retries = max_retries
        self._sleep = sleep
        self._backoff = backoff_seconds
        # Names the sending copy (pid@host), for Heroku support and for telling copies apart.
        self._user_agent = f"{USER_AGENT} (instance {instance})" if instance else USER_AGENT
        self._budget = budget
        self._rate_limit_remaining: int | None = None
        self._last_request_id: str | None = None

    def __repr__(self) -> str:
        return f"HerokuClient(app={self._app!r}, base_url={str(self._http.base_url)!r})"

    @property
    def rate_limit_remaining(self) -> int | None:
        """The last ``RateLimit-Remaining`` Heroku sent; kept when a response lacks the header."""
        return self._rate_limit_remaining

    @property
    def last_request_id(self) -> str | None:
        """The ``Request-Id`` of the latest response, the handle Heroku support asks for."""
        return self._last_request_id

    def list_formation(self, may_send: MaySend | None = None) -> FormationResult:
        entries: list[FormationEntry] = []
        page_range = FIRST_RANGE
        for _ in range(MAX_PAGES):
            response = self._send("GET", None, page_range, may_send)
            entries.extend(self._parse_entries("GET", response))
            next_range = response.headers.get("Next-Range")
            if response.status_code != 206 or not next_range:
                return self._result(entries, response)
            page_range = next_range
        raise HerokuUnavailableError(f"GET {self._path}: still paging after {MAX_PAGES} pages")

    def batch_update(
        self, updates: Sequence[FormationUpdate], may_send: MaySend | None = None
    ) -> FormationResult:
        """Set absolute quantities; the result holds only the entries Heroku sent back."""
        body = {"updates": [update_item(u) for u in checked(updates)]}
        # Absolute quantities make a replayed PATCH as harmless as a replayed GET.
        response = self._send("PATCH", body, None, may_send)
        return self._result(self._parse_entries("PATCH", response), response)

    def latest_release(self, may_send: MaySend | None = None) -> Release | None:
        """The newest release of the app (one call), or None for an app never released."""
        path = self._releases_path
        response = self._send("GET", None, NEWEST_RELEASE_RANGE, may_send, path=path)
        try:
            items = response.json()
            if not isinstance(items, list):
                raise TypeError("expected a JSON array")
            if not items:
                return None
            newest = max(items, key=lambda item: int(item["version"]))
            return Release(
                version=int(newest["version"]),
                created_at=datetime.fromisoformat(str(newest["created_at"])),
                description=str(newest.get("description") or ""),
                status=str(newest.get("status") or "succeeded"),
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise HerokuUnavailableError(
                self._scrub(f"GET {path}: unexpected response body ({exc})"),
                status=response.status_code,
                request_id=response.headers.get("Request-Id"),
            ) from exc

    def _send(
        self,
        method: str,
        body: Any,
        page_range: str | None,
        may_send: MaySend | None,
        *,
        path: str | None = None,
    ) -> httpx.Response:
        """One attempt, then bounded retries of server failures; each one asks ``may_send``."""
        failed: HerokuUnavailableError | None = None
        for attempt in range(self._max_retries + 1):
            if failed is not None:
                self._sleep(self._wait(attempt, failed))
            refusal = may_send() if may_send is not None else None
            if refusal is None and self._budget is not None:
                refusal = self._budget.spend()
            if refusal is not None:
                raise _held_back(refusal, failed)
            try:
                return self._send_once(method, body, page_range, path or self._path)
            except HerokuUnavailableError as exc:
                too_long = (exc.retry_after or 0.0) > MAX_RETRY_AFTER_IN_CALL_SECONDS
                if attempt == self._max_retries or too_long:
                    raise
                failed = exc
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _wait(self, attempt: int, failed: HerokuError) -> float:
        backoff = min(MAX_BACKOFF_SECONDS, self._backoff * 2 ** (attempt - 1))
        jitter = random.uniform(0, self._backoff)  # noqa: S311 - spreading retries, not secrets
        return float(max(backoff + jitter, failed.retry_after or 0.0))

    def _send_once(
        self, method: str, body: Any, page_range: str | None, path: str
    ) -> httpx.Response:
        headers = {
            "Accept": ACCEPT,
            "Authorization": f"Bearer {self.__api_key}",
            "User-Agent": self._user_agent,
            "Request-Id": str(uuid.uuid4()),
        }
        if page_range is not None:
            headers["Range"] = page_range
        try:
            response = self._http.request(method, path, headers=headers, json=body)
        except httpx.RequestError as exc:
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise HerokuUnavailableError(self._scrub(f"{method} {path}: {detail}")) from exc
        self._remember(response)
        if not response.is_success:
            raise self._error_for(method, response, path)
        return response

    def _remember(self, response: httpx.Response) -> None:
        self._last_request_id = response.headers.get("Request-Id")
        remaining = int_or_none(response.headers.get("RateLimit-Remaining"))
        if remaining is not None:
            self._rate_limit_remaining = remaining
        if self._budget is not None:
            self._budget.seen(remaining)

    def _error_for(self, method: str, response: httpx.Response, path: str) -> HerokuError:
        status = response.status_code
        error_id, message = error_body(response)
        cls = error_class(status, error_id)
        label = f"{status} {error_id}" if error_id else str(status)
        text = f"{method} {path}: {label}: {message or response.reason_phrase}"
        request_id = response.headers.get("Request-Id")
        return cls(
            self._scrub(text),
            status=status,
            error_id=error_id,
            request_id=request_id,
            retry_after=retry_after(response.headers),
        )

    def _parse_entries(self, method: str, response: httpx.Response) -> list[FormationEntry]:
        try:
            items = response.json()
            if not isinstance(items, list):
                raise TypeError("expected a JSON array")
            return [entry(item) for item in items]
        except (ValueError, TypeError, KeyError) as exc:
            raise HerokuUnavailableError(
                self._scrub(f"{method} {self._path}: unexpected response body ({exc})"),
                status=response.status_code,
                request_id=response.headers.get("Request-Id"),
            ) from exc

    def _result(self, entries: list[FormationEntry], response: httpx.Response) -> FormationResult:
        return FormationResult(
            formation=Formation.of(entries),
            request_id=response.headers.get("Request-Id"),
            rate_limit_remaining=int_or_none(response.headers.get("RateLimit-Remaining")),
        )

    def _scrub(self, text: str) -> str:
        # Defence in depth: no code path should put the key in a message, so make sure none can.
        return text.replace(self.__api_key, _REDACTED) if self.__api_key else text


def _held_back(refusal: str, failed: HerokuError | None) -> HerokuHeldBackError:
    if failed is None:
        return HerokuHeldBackError(refusal)
    return HerokuHeldBackError(
        f"{refusal}; no retry of: {failed}", status=failed.status, request_id=failed.request_id
    )
