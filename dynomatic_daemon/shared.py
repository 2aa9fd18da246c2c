"""What the apps of one scaler share when they can: HTTP clients, read connections, lock sessions.

A hundred apps each with their own connections would hold two hundred sessions on one
PostgreSQL server (over its default ``max_connections``) and a hundred TLS contexts. So apps
whose settings agree share:

- one ``httpx.Client`` per API URL and timeout (it is thread-safe and pools its connections);
- one read connection per database URL and limits, each read under a lock (one round trip of a
  few milliseconds; the database is the same, so its slowness is shared anyway);
- one leader-lock session per database URL: each app's lock is its own advisory key on it, and
  a lost session loses every lock on it, which each app then sees at its next proof (``verify``)
  and takes again in a new tenure. The lease (``idle_session_timeout``) now lapses only when
  the whole process stops touching the session (frozen, cut off); a single stuck app keeps its
  lock until its tick ends, bounded by the database and API timeouts.

``close`` closes everything; each app's own ``ExitStack`` leaves these alone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import psycopg

from dynomatic_daemon import config
from dynomatic_daemon.clock import Clock
from dynomatic_daemon.db import Database
from dynomatic_daemon.leader import Leadership

T = TypeVar("T")


class LockedDatabase(Database):
    """One read connection used by several apps' ticks, one read at a time."""

    def __init__(self, settings: config.DatabaseSettings, clock: Clock) -> None:
        super().__init__(settings, clock)
        self._lock = threading.RLock()  # a failed read closes the connection from within run

    def run(self, fn: Callable[[psycopg.Connection[Any]], T]) -> T:
        with self._lock:
            return super().run(fn)

    def close(self) -> None:
        with self._lock:
            super().close()


class LockSession:
    """The one connection the leader locks of several apps live on."""

    def __init__(self) -> None:
        self.mutex = threading.RLock()
        self.conn: psycopg.Connection[Any] | None = None

    def close(self) -> None:
        with self.mutex:
            if self.conn is not None:
                self.conn.close()
                self.conn = None


class SharedLeadership(Leadership):
    """One app's leader lock, on a session shared with the other apps of its database."""

    def __init__(self, session: LockSession, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._session = session

    def _open(self) -> psycopg.Connection[Any]:
        with self._session.mutex:
            conn = self._session.conn
            if conn is None or conn.closed or conn.broken:
                conn = self._session.conn = super()._open()
            return conn


class Shared:
    """The HTTP clients, read connections and lock sessions of one scaler's apps."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._http: dict[tuple[str, float], httpx.Client] = {}
        self._databases: dict[tuple[str, int, int], LockedDatabase] = {}
        self._sessions: dict[tuple[str, int, int], LockSession] = {}

    def http(self, heroku: config.HerokuSettings) -> httpx.Client:
        key = (heroku.api_url, heroku.timeout_seconds)
        with self._lock:
            if key not in self._http:
                self._http[key] = httpx.Client(
                    base_url=heroku.api_url, timeout=heroku.timeout_seconds
                )
            return self._http[key]

    def database(self, settings: config.DatabaseSettings) -> Database:
        key = _database_key(settings)
        with self._lock:
            if key not in self._databases:
                self._databases[key] = LockedDatabase(settings, self._clock)
            return self._databases[key]

    def leadership(
        self, settings: config.DatabaseSettings, app: str, *, lease_seconds: float, instance: str
    ) -> Leadership:
        key = _database_key(settings)
        with self._lock:
            session = self._sessions.setdefault(key, LockSession())
        return SharedLeadership(
            session, settings, app, lease_seconds=lease_seconds, instance=instance
        )

    def close(self) -> None:
        with self._lock:
            for session in self._sessions.values():
                session.close()
            for database in self._databases.values():
                database.close()
            for client in self._http.values():
                client.close()


def _database_key(settings: config.DatabaseSettings) -> tuple[str, int, int]:
    return (
        settings.url.get_secret_value(),
        settings.statement_timeout_ms,
        settings.connect_timeout_seconds,
    )
