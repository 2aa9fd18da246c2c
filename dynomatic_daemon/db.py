"""Database connections for queue reads, and the one place psycopg errors become QueueReadError.

Every connection is read-only (``default_transaction_read_only``), bounded by
``statement_timeout``, named ``dynomatic`` in ``pg_stat_activity``, runs in UTC, and uses TLS
(``sslmode=require``) for any non-local host unless the URL says otherwise: Heroku Postgres
needs it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from psycopg import conninfo

from dynomatic_daemon.addresses import is_local_database, secrets_in
from dynomatic_daemon.clock import Clock
from dynomatic_daemon.config import DatabaseSettings
from dynomatic_daemon.errors import QueueReadError

T = TypeVar("T")
Connect = Callable[..., psycopg.Connection[Any]]
MAX_BACKOFF_SECONDS = 60.0


def connection_kwargs(
    settings: DatabaseSettings, application_name: str = "dynomatic"
) -> dict[str, Any]:
    url = settings.url.get_secret_value()
    params = conninfo.conninfo_to_dict(url)
    options = " ".join(
        [
            str(params.get("options", "")),
            "-c default_transaction_read_only=on",
            f"-c statement_timeout={settings.statement_timeout_ms}",
            "-c TimeZone=UTC",
            # these small monitoring queries never pay back the ~20 ms JIT can cost to compile
            "-c jit=off",
        ]
    ).strip()
    extra: dict[str, Any] = {
        "application_name": application_name,
        "connect_timeout": settings.connect_timeout_seconds,
        "options": options,
        "autocommit": True,
    }
    if "sslmode" not in params and not is_local_database(params):
        extra["sslmode"] = "require"
    return {"conninfo": url, **extra}


def redact(text: str, settings: DatabaseSettings) -> str:
    """Remove the URL's password (and the URL itself) from a message before anyone sees it."""
    for secret in sorted(secrets_in(settings.url.get_secret_value()), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


class Database:
    """A lazily opened connection, reopened after it is lost, with backoff while it cannot be."""

    def __init__(
        self,
        settings: DatabaseSettings,
        clock: Clock,
        connect: Connect = psycopg.Connection.connect,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._connect = connect
        self._conn: psycopg.Connection[Any] | None = None
        self._failures = 0
        self._retry_at = 0.0

    def __repr__(self) -> str:
        return "Database(<redacted>)"

    def run(self, fn: Callable[[psycopg.Connection[Any]], T]) -> T:
        conn = self._connection()
        try:
            result = fn(conn)
        except psycopg.Error as exc:
            # A failed statement leaves an autocommit connection usable; a lost one is reopened.
            if conn.closed or conn.broken:
                self._fail()
            raise QueueReadError(self._describe(exc)) from None
        self._failures = 0
        return result

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        wait = self._retry_at - self._clock.monotonic()
        if wait > 0:
            raise QueueReadError(f"database unavailable; next connection attempt in {wait:.0f}s")
        try:
            self._conn = self._connect(**connection_kwargs(self._settings))
        except psycopg.Error as exc:
            self._fail()
            raise QueueReadError(self._describe(exc)) from None
        return self._conn

    def _fail(self) -> None:
        self.close()
        self._failures += 1
        backoff = (
            min(MAX_BACKOFF_SECONDS, 2.0 ** (self._failures - 1)) if self._failures > 1 else 0.0
        )
        self._retry_at = self._clock.monotonic() + backoff

    def _describe(self, exc: psycopg.Error) -> str:
        kind = type(exc).__name__
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else kind
        return redact(f"{kind}: {detail}", self._settings)
