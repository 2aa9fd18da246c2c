"""The one error tree of the daemon.

    DynomaticError
    ├── ConfigError               bad configuration; carries one Problem per bad key (exit code 2)
    ├── QueueReadError            reading a job table failed (psycopg errors are mapped in db.py)
    └── HerokuError               the Platform API refused or could not be reached
        ├── HerokuAuthError           401 unauthorized, 403 forbidden/suspended, 402 delinquent
        ├── HerokuNotFoundError       404: unknown app or process type
        ├── HerokuInvalidRequestError 400/422: invalid quantity, over a dyno limit, preboot lock
        ├── HerokuRateLimitedError    429: the account's token bucket is empty
        ├── HerokuUnavailableError    5xx, timeouts, connection errors (retryable)
        └── HerokuHeldBackError       not called at all: backing off, saving budget, or a request
                                      Heroku already refused

Each boundary maps foreign exceptions once, chained with ``from``. Messages never contain secrets.
"""

from __future__ import annotations

from dataclasses import dataclass


class DynomaticError(Exception):
    """Base of every error the daemon raises on purpose."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One bad configuration item: where it is, what it holds, what is wrong."""

    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


class ConfigError(DynomaticError):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class QueueReadError(DynomaticError):
    """A queue read failed; the caller must hold the formation."""


class HerokuError(DynomaticError):
    """A Platform API call failed. ``error_id`` is Heroku's body ``id`` when there was one;
    ``retry_after`` the seconds a ``Retry-After`` header asked the client to wait."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_id: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_id = error_id
        self.request_id = request_id
        self.retry_after = retry_after


class HerokuAuthError(HerokuError):
    pass


class HerokuNotFoundError(HerokuError):
    pass


class HerokuInvalidRequestError(HerokuError):
    pass


class HerokuRateLimitedError(HerokuError):
    pass


class HerokuUnavailableError(HerokuError):
    pass


class HerokuHeldBackError(HerokuError):
    """The daemon chose not to call the API this tick; the message says why and for how long."""
