"""One active scaler per app: the daemon holding a Postgres session advisory lock writes.

The lock lives on a connection of its own, so queue reads can fail and reconnect without giving
it up. A second copy (``scaler`` scaled to 2, or old and new dynos overlapping during a deploy)
finds the lock taken and stands by, trying again every tick. When the leader exits or its
connection drops, Postgres releases the lock and the standby takes over at its next tick.

When the database cannot be reached nobody can hold the lock; the state is then UNKNOWN and the
tick may only make the changes every copy would make alike (``fallback_dynos``, which only raises).
"""

from __future__ import annotations

from typing import Any

import psycopg

from dynomatic_daemon.clock import Clock
from dynomatic_daemon.config import DatabaseSettings
from dynomatic_daemon.db import connection_kwargs

LEADER, STANDBY, UNKNOWN = "leader", "standby", "unknown"
LOCK_CLASS = 0x64796E6D  # "dynm": the first key half, so the lock is easy to spot in pg_locks
TRY_LOCK_SQL = "SELECT pg_try_advisory_lock(%s, hashtext(%s))"
CHECK_SQL = "SELECT 1"


class Leadership:
    def __init__(
        self,
        settings: DatabaseSettings,
        app: str,
        clock: Clock,
        verify_every_seconds: float,
        connect: Any = psycopg.Connection.connect,
    ) -> None:
        self._settings = settings
        self._key = (LOCK_CLASS, f"dynomatic:{app}")
        self._clock = clock
        self._verify_every = verify_every_seconds
        self._connect = connect
        self._conn: psycopg.Connection[Any] | None = None
        self._held = False
        self._verified_at = float("-inf")

    def __repr__(self) -> str:
        return f"Leadership(held={self._held})"

    @property
    def held(self) -> bool:
        return self._held

    def acquire(self) -> str:
        """LEADER, STANDBY (another copy holds the lock) or UNKNOWN (no database to ask)."""
        if self._held and self._clock.monotonic() - self._verified_at < self._verify_every:
            return LEADER
        if self._held and self._alive():
            return LEADER
        held = self._try()  # once: a database that is down must not cost two connect timeouts
        if held is None:
            return UNKNOWN
        return LEADER if held else STANDBY

    def verify(self) -> bool:
        """Prove the lock is still ours (a lost connection means a lost lock), or retake it."""
        return (self._held and self._alive()) or bool(self._try())

    def _alive(self) -> bool:
        if self._conn is None:
            self._held = False
            return False
        try:
            self._conn.execute(CHECK_SQL)
        except psycopg.Error:
            self._drop()
            return False
        self._verified_at = self._clock.monotonic()
        return True

    def close(self) -> None:
        self._drop()

    def _try(self) -> bool | None:
        """True if the lock is ours now, False if another holds it, None if no answer."""
        try:
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._conn = self._connect(**connection_kwargs(self._settings, "dynomatic-leader"))
            row = self._conn.execute(TRY_LOCK_SQL, self._key).fetchone()
        except psycopg.Error:
            self._drop()
            return None
        self._held = bool(row and row[0])
        if self._held:
            self._verified_at = self._clock.monotonic()
        return self._held

    def _drop(self) -> None:
        self._held = False
        if self._conn is not None:
            self._conn.close()
            self._conn = None
