"""One active scaler per app: the daemon holding a Postgres session advisory lock writes.

The lock lives on a connection of its own, so queue reads can fail and reconnect without giving
it up. A second copy (``scaler`` scaled to 2, or old and new dynos overlapping during a deploy)
finds the lock taken and stands by, trying again every tick. When the leader exits or its
connection drops, Postgres releases the lock and the standby takes over at its next tick.

A lease bounds how long a leader that stops working keeps the lock: the lock's session sets
``idle_session_timeout`` (PostgreSQL 14 and later), so the server ends the session, and frees the
lock, once it has been idle for ``lease_seconds``. A working leader touches it at every tick,
before every request and from ``keepalive`` while its ticks complete; one that is frozen
(SIGSTOP), stuck or cut off goes quiet and loses the lock. A TCP keepalive could not do this: the
kernel answers those for a frozen process.

Proof, not memory: ``verify`` is a round trip on the lock's own session, made right before each
request, and never retakes a lost lock. A lock that is lost and taken again starts a new
``tenure``; the caller must then look at the world afresh (another copy may have written).

When the database cannot be reached nobody can hold the lock; the state is then UNKNOWN and the
tick may only make the changes every copy would make alike (``fallback_dynos``, which only raises).
"""

from __future__ import annotations

import threading
from enum import StrEnum
from typing import Any

import psycopg

from dynomatic_daemon.config import DatabaseSettings
from dynomatic_daemon.db import Connect, connection_kwargs


class Role(StrEnum):
    LEADER = "leader"
    STANDBY = "standby"
    UNKNOWN = "unknown"  # no database to ask


LOCK_CLASS = 0x64796E6D  # "dynm": the first key half, so the lock is easy to spot in pg_locks
TRY_LOCK_SQL = "SELECT pg_try_advisory_lock(%s, hashtext(%s))"
CHECK_SQL = "SELECT 1"
# Older servers lack the setting; there a stopped leader keeps the lock until its socket closes.
LEASE_SQL = (
    "SELECT set_config('idle_session_timeout', %s, false)"
    " WHERE current_setting('server_version_num')::int >= 140000"
)
APPLICATION_NAME = "dynomatic-leader"


class Leadership:
    def __init__(
        self,
        settings: DatabaseSettings,
        app: str,
        *,
        lease_seconds: float,
        instance: str = "",
        connect: Connect = psycopg.Connection.connect,
    ) -> None:
        self._settings = settings
        self._key = (LOCK_CLASS, f"dynomatic:{app}")
        self.lease_seconds = lease_seconds
        # pg_stat_activity shows which copy holds the lock; 63 bytes is Postgres's limit.
        self._application_name = f"{APPLICATION_NAME} {instance}".strip()[:63]
        self._connect = connect
        self._conn: psycopg.Connection[Any] | None = None
        self._held = False
        self._tenure = 0
        self._mutex = threading.RLock()  # the tick and the keepalive share one session

    def __repr__(self) -> str:
        return f"Leadership(held={self._held}, tenure={self._tenure})"

    @property
    def held(self) -> bool:
        return self._held

    @property
    def tenure(self) -> int:
        """Counts the times this copy took the lock; a change means it was lost in between."""
        return self._tenure

    def acquire(self) -> Role:
        """Prove the lock is still ours, or try to take it: once per tick."""
        with self._mutex:
            if self._held and self._alive():
                return Role.LEADER
            held = self._try()
            if held is None:
                return Role.UNKNOWN
            return Role.LEADER if held else Role.STANDBY

    def verify(self) -> bool:
        """Prove, with a round trip, that the lock taken in this tenure is still ours."""
        with self._mutex:
            return self._held and self._alive()

    def keepalive(self) -> None:
        """Touch the held lock's session so its lease does not run out between ticks."""
        with self._mutex:
            if self._held:
                self._alive()

    def close(self) -> None:
        with self._mutex:
            self._drop()

    def _alive(self) -> bool:
        if self._conn is None:
            self._held = False
            return False
        try:
            self._conn.execute(CHECK_SQL)
        except psycopg.Error:
            self._drop()
            return False
        return True

    def _try(self) -> bool | None:
        """True if the lock is ours now, False if another holds it, None if no answer."""
        reused = self._conn is not None
        held = self._attempt()
        if held is None and reused:
            # The old session died while idle (its lease ran out, or it was terminated): one
            # fresh connection, so a database that is down still costs one connect timeout.
            held = self._attempt()
        if held:
            self._tenure += 1
        self._held = bool(held)
        return held

    def _attempt(self) -> bool | None:
        try:
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._conn = self._open()
            row = self._conn.execute(TRY_LOCK_SQL, self._key).fetchone()
        except psycopg.Error:
            self._drop()
            return None
        return bool(row and row[0])

    def _open(self) -> psycopg.Connection[Any]:
        conn = self._connect(**connection_kwargs(self._settings, self._application_name))
        try:
            conn.execute(LEASE_SQL, (f"{max(1, round(self.lease_seconds * 1000))}ms",))
        except psycopg.Error:
            conn.close()
            raise
        return conn

    def _drop(self) -> None:
        self._held = False
        if self._conn is not None:
            self._conn.close()
            self._conn = None
