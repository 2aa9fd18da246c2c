"""Helpers shared by the tests that run the real daemon in a child process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import psycopg

from dynomatic_daemon.sandbox.schemas import SCHEMAS

API_KEY = "hk-e2e-secret-7f3a9c1d2b"
DB_PASSWORD = "pw-e2e-secret-5e8d"
FIXTURES = SCHEMAS


class DaemonProcess:
    """``dynomatic <command>`` in a child process, logging JSON lines to a file we can read."""

    def __init__(self, args: list[str], env: Mapping[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dynomatic_daemon", *args],
            env=dict(env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        found = []
        for line in self.output().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if name is None or event.get("event") == name:
                found.append(event)
        return found

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> tuple[int, float]:
        """SIGTERM, then wait; returns (exit code, seconds it took)."""
        started = time.monotonic()
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._log.close()
        return code, time.monotonic() - started


def enqueue(conn: psycopg.Connection[Any], count: int, queue: str = "default") -> float:
    """Commit ``count`` ready delayed_job jobs; return the monotonic time of the commit."""
    conn.execute(
        "INSERT INTO delayed_jobs (handler, queue, run_at, created_at, updated_at) "
        "SELECT 'h', %s, now() AT TIME ZONE 'UTC', now(), now() FROM generate_series(1, %s)",
        (queue, count),
    )
    return time.monotonic()


# The leader lock (dynomatic_daemon.leader): an advisory lock whose first key is "dynm".
# Advisory locks belong to one database; other test runs on the server hold their own.
LOCK_HOLDER_SQL = """
    SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database
    WHERE l.locktype = 'advisory' AND l.classid = x'64796e6d'::int::oid AND l.granted
      AND d.datname = current_database()
"""


def lock_holder(conn: psycopg.Connection[Any]) -> int | None:
    """The backend pid that holds the leader lock now, if any."""
    row = conn.execute(LOCK_HOLDER_SQL).fetchone()
    return int(row[0]) if row else None


def kill_lock_backend(conn: psycopg.Connection[Any]) -> int:
    """Terminate the session holding the leader lock (as a failover or a DBA would)."""
    pid = lock_holder(conn)
    assert pid is not None, "nobody holds the leader lock"
    conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    return pid


def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    """Poll ``predicate`` every 50 ms until it holds or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
