"""What the Platform API sends and expects, parsed without I/O: bodies, error ids, headers.

Error bodies are ``{"id", "message"}``; the daemon branches on ``id`` (then on the status),
never on the message text. Formation entries are parsed tolerantly: unknown keys are ignored and
the size is read from ``dyno_size.name``, or the deprecated ``size`` string of older answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from dynomatic_daemon.errors import (
    HerokuAuthError,
    HerokuError,
    HerokuInvalidRequestError,
    HerokuNotFoundError,
    HerokuRateLimitedError,
    HerokuUnavailableError,
)
from dynomatic_daemon.models import FormationEntry, FormationUpdate

_MESSAGE_LIMIT = 500
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


def retry_after(headers: httpx.Headers) -> float | None:
    """Seconds a ``Retry-After`` header asks for: a number, or an HTTP date read against the
    response's own ``Date`` (so no local clock is needed); None when absent or unreadable."""
    value = headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        until: datetime = parsedate_to_datetime(value)
        sent: datetime = parsedate_to_datetime(headers.get("Date", ""))
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, (until - sent).total_seconds())


def checked(updates: Sequence[FormationUpdate]) -> Sequence[FormationUpdate]:
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


def update_item(update: FormationUpdate) -> dict[str, Any]:
    # Never `size` (deprecated, fails the current schema) and never string or relative quantities.
    return {"type": update.type, "quantity": update.quantity}


def entry(item: Any) -> FormationEntry:
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


def error_body(response: httpx.Response) -> tuple[str | None, str | None]:
    try:
        body = response.json()
    except ValueError:
        body = None
    fields: dict[str, Any] = body if isinstance(body, dict) else {}
    error_id, message = fields.get("id"), fields.get("message")
    message = message[:_MESSAGE_LIMIT] if isinstance(message, str) else None
    return (error_id if isinstance(error_id, str) else None), message


def error_class(status: int, error_id: str | None) -> type[HerokuError]:
    # 5xx first, so a server failure is always retryable whatever its body says.
    if status >= 500:
        return HerokuUnavailableError
    fallback = HerokuInvalidRequestError if 400 <= status < 500 else HerokuError
    return _BY_ID.get(error_id or "") or _BY_STATUS.get(status) or fallback


def int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
