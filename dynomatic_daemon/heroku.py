"""A thin client for the Heroku Platform API formation endpoints.

The caller owns the ``httpx.Client`` (base URL, timeout, transport); this module owns the protocol:
headers, pagination, bounded retries and mapping failures onto ``errors.HerokuError``. No logging.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import tenacity

from dynomatic_daemon import __version__
from dynomatic_daemon.errors import (
    HerokuAuthError,
    HerokuError,
    HerokuInvalidRequestError,
    HerokuNotFoundError,
    HerokuRateLimitedError,
    HerokuUnavailableError,
)
from dynomatic_daemon.models import Formation, FormationEntry, FormationUpdate

ACCEPT = "application/vnd.heroku+json; version=3"
USER_AGENT = f"dynomatic-daemon/{__version__} httpx/{httpx.__version__}"
# Ask for the largest page up front (as node-heroku-client does), so pagination stays theoretical.
FIRST_RANGE = "id ..; max=1000"
# A formation has one entry per Procfile type; more pages than this means a server loop.
MAX_PAGES = 20
MAX_BACKOFF_SECONDS = 30.0
_MESSAGE_LIMIT = 500
_REDACTED = "[redacted]"

_AUTH_IDS = ("unauthorized", "delinquent", "forbidden", "suspended")
_INVALID_IDS = (
    "bad_request", "invalid_params", "verification_needed", "verification_required",
    "conflict", "requested_range_not_satisfiable",
)  # fmt: skip
_BY_ID: dict[str, type[HerokuError]] = {
    **dict.fromkeys(_AUTH_IDS, HerokuAuthError),
    **dict.fromkeys(_INVALID_IDS, HerokuInvalidRequestError),
    "not_found": HerokuNotFoundError,
    "rate_limit": HerokuRateLimitedError,
}
_BY_STATUS: dict[int, type[HerokuError]] = {
    **dict.fromkeys((401, 402, 403), HerokuAuthError),
    404: HerokuNotFoundError,
    429: HerokuRateLimitedError,
}
_RETRYABLE = (HerokuRateLimitedError, HerokuUnavailableError)


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
        sleep: Callable[[float], None] = time.sleep,
        backoff_seconds: float = 0.5,
    ) -> None:
        if max_retries < 0 or backoff_seconds < 0:
            raise ValueError("max_retries and backoff_seconds must be >= 0")
        self._http = http
        self._app = app
        self.__api_key = api_key
        self._path = f"/apps/{quote(app, safe='')}/formation"
        self._retrying = tenacity.Retrying(
            sleep=sleep,
            stop=tenacity.stop_after_attempt(max_retries + 1),
            wait=tenacity.wait_exponential(multiplier=backoff_seconds, max=MAX_BACKOFF_SECONDS)
            + tenacity.wait_random(0, backoff_seconds),
            retry=tenacity.retry_if_exception_type(_RETRYABLE),
            reraise=True,
        )
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

    def list_formation(self) -> FormationResult:
        entries: list[FormationEntry] = []
        page_range = FIRST_RANGE
        for _ in range(MAX_PAGES):
            response = self._retrying(self._send_once, "GET", None, page_range)
            entries.extend(self._parse_entries("GET", response))
            next_range = response.headers.get("Next-Range")
            if response.status_code != 206 or not next_range:
                return self._result(entries, response)
            page_range = next_range
        raise HerokuUnavailableError(f"GET {self._path}: still paging after {MAX_PAGES} pages")

    def batch_update(self, updates: Sequence[FormationUpdate]) -> FormationResult:
        """Set absolute quantities; the result holds only the entries Heroku sent back."""
        body = {"updates": [_update_item(u) for u in _checked(updates)]}
        # Absolute quantities make a replayed PATCH as harmless as a replayed GET.
        response = self._retrying(self._send_once, "PATCH", body, None)
        return self._result(self._parse_entries("PATCH", response), response)

    def _send_once(self, method: str, body: Any, page_range: str | None) -> httpx.Response:
        headers = {
            "Accept": ACCEPT,
            "Authorization": f"Bearer {self.__api_key}",
            "User-Agent": USER_AGENT,
            "Request-Id": str(uuid.uuid4()),
        }
        if page_range is not None:
            headers["Range"] = page_range
        try:
            response = self._http.request(method, self._path, headers=headers, json=body)
        except httpx.RequestError as exc:
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise HerokuUnavailableError(self._scrub(f"{method} {self._path}: {detail}")) from exc
        self._remember(response)
        if not response.is_success:
            raise self._error_for(method, response)
        return response

    def _remember(self, response: httpx.Response) -> None:
        self._last_request_id = response.headers.get("Request-Id")
        remaining = _int_or_none(response.headers.get("RateLimit-Remaining"))
        if remaining is not None:
            self._rate_limit_remaining = remaining

    def _error_for(self, method: str, response: httpx.Response) -> HerokuError:
        status = response.status_code
        error_id, message = _error_body(response)
        cls = _error_class(status, error_id)
        label = f"{status} {error_id}" if error_id else str(status)
        text = f"{method} {self._path}: {label}: {message or response.reason_phrase}"
        request_id = response.headers.get("Request-Id")
        return cls(self._scrub(text), status=status, error_id=error_id, request_id=request_id)

    def _parse_entries(self, method: str, response: httpx.Response) -> list[FormationEntry]:
        try:
            items = response.json()
            if not isinstance(items, list):
                raise TypeError("expected a JSON array")
            return [_entry(item) for item in items]
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
            rate_limit_remaining=_int_or_none(response.headers.get("RateLimit-Remaining")),
        )

    def _scrub(self, text: str) -> str:
        # Defence in depth: no code path should put the key in a message, so make sure none can.
        return text.replace(self.__api_key, _REDACTED) if self.__api_key else text


def _checked(updates: Sequence[FormationUpdate]) -> Sequence[FormationUpdate]:
    if not updates:
        raise ValueError("batch_update needs at least one update")
    seen: set[str] = set()
    for u in updates:
        if type(u.quantity) is not int or u.quantity < 0:
            raise ValueError(f"quantity for {u.type!r} must be an integer >= 0, got {u.quantity!r}")
        if u.type in seen:
            raise ValueError(f"process type {u.type!r} appears twice in one batch update")
        seen.add(u.type)
    return updates


def _update_item(update: FormationUpdate) -> dict[str, Any]:
    # Never `size` (deprecated, fails the current schema) and never string or relative quantities.
    return {"type": update.type, "quantity": update.quantity}


def _entry(item: Any) -> FormationEntry:
    if not isinstance(item, dict):
        raise TypeError("expected formation objects")
    ptype, quantity = item["type"], item["quantity"]
    if not isinstance(ptype, str) or type(quantity) is not int:
        raise TypeError("formation entry needs a string type and an integer quantity")
    return FormationEntry(type=ptype, quantity=quantity, size=_size(item))


def _size(item: dict[str, Any]) -> str | None:
    dyno_size = item.get("dyno_size")
    if isinstance(dyno_size, dict) and isinstance(dyno_size.get("name"), str):
        return str(dyno_size["name"])
    legacy = item.get("size")
    return legacy if isinstance(legacy, str) else None


def _error_body(response: httpx.Response) -> tuple[str | None, str | None]:
    try:
        body = response.json()
    except ValueError:
        body = None
    fields: dict[str, Any] = body if isinstance(body, dict) else {}
    error_id, message = fields.get("id"), fields.get("message")
    message = message[:_MESSAGE_LIMIT] if isinstance(message, str) else None
    return (error_id if isinstance(error_id, str) else None), message


def _error_class(status: int, error_id: str | None) -> type[HerokuError]:
    # 5xx first, so a server failure is always retryable whatever its body says.
    if status >= 500:
        return HerokuUnavailableError
    fallback = HerokuInvalidRequestError if 400 <= status < 500 else HerokuError
    return _BY_ID.get(error_id or "") or _BY_STATUS.get(status) or fallback


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
