"""History's writer: a thread of its own, a bounded queue, one round trip per write.

The tick only ever calls ``submit``, which never blocks: when the queue is full the batch is
dropped and counted. The thread drains whatever is queued into one statement (samples and events
together), opens and migrates its connection lazily, backs off while the database fails (the
queue fills meanwhile, then drops), and prunes rows past the retention once an hour. Every loss
is counted and logged; nothing here raises into the daemon.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg
from psycopg import sql

from dynomatic_daemon.clock import Clock
from dynomatic_daemon.history.rows import Batch
from dynomatic_daemon.history.statements import PRUNE, WRITE, write_params
from dynomatic_daemon.logs import Logger
from dynomatic_daemon.observe_config import HistorySettings
from dynomatic_daemon.store import connection, migrations

MAX_BATCHES_PER_WRITE = 500
MAX_ATTEMPTS = 3  # a batch whose write failed this often is counted lost
MAX_BACKOFF_SECONDS = 60.0
PRUNE_EVERY_SECONDS = 3600.0
PRUNE_LIMIT = 20_000  # rows per table per prune; the next prune takes the rest
DROP_LOG_EVERY_SECONDS = 60.0

_STOP = Batch()


def _combine(batches: list[Batch]) -> Batch:
    return Batch(
        tuple(s for b in batches for s in b.samples), tuple(e for b in batches for e in b.events)
    )


class Writer:
    def __init__(
        self,
        settings: HistorySettings,
        app: str,
        clock: Clock,
        log: Logger,
        connect: Callable[..., psycopg.Connection[Any]] = connection.connect,
    ) -> None:
        if settings.url is None:
            raise ValueError("history needs a database URL")
        self._settings, self._url, self._app = settings, settings.url, app
        self._clock, self._log, self._connect = clock, log, connect
        self._queue: queue.Queue[Batch] = queue.Queue(maxsize=settings.queue_size)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._conn: psycopg.Connection[Any] | None = None
        self._failures = 0
        self._pruned_at = float("-inf")
        self._dropped_logged_at = float("-inf")
        self.written = self.dropped = self.failed = 0  # rows
        schema = sql.Identifier(settings.schema_name)
        self._write_sql = sql.SQL(WRITE).format(schema=schema)
        self._prune_sql = sql.SQL(PRUNE).format(schema=schema)
        self._thread = threading.Thread(target=self._run, name="dynomatic-history", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def pending(self) -> int:
        """Batches waiting in the queue."""
        return self._queue.qsize()

    def submit(self, batch: Batch) -> None:
        """Queue a batch; never blocks. A full queue drops it, counted and logged."""
        if not len(batch):
            return
        try:
            self._queue.put_nowait(batch)
        except queue.Full:
            with self._lock:
                self.dropped += len(batch)
                dropped = self.dropped
            now = self._clock.monotonic()
            if now - self._dropped_logged_at >= DROP_LOG_EVERY_SECONDS:
                self._dropped_logged_at = now
                self._log.warning(
                    "history_dropped",
                    dropped_rows_total=dropped,
                    reason="the history queue is full: the database is slow or down",
                )

    def close(self, timeout: float) -> bool:
        """Write what is queued (bounded by ``timeout``), then stop; False if it did not finish."""
        self._stop.set()
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=timeout)
        self._thread.join(timeout)
        clean = not self._thread.is_alive()
        self._log.info(
            "history_stopped",
            written_rows=self.written,
            dropped_rows=self.dropped,
            failed_rows=self.failed,
            finished=clean,
        )
        return clean

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            self._close_connection()  # even if something below failed: no connection left open

    def _loop(self) -> None:
        retry, attempts = Batch(), 0
        while True:
            if self._failures and not self._stop.is_set():
                backoff = min(MAX_BACKOFF_SECONDS, 2.0 ** (self._failures - 1))
                self._stop.wait(backoff)  # the queue fills meanwhile, then drops
            batches = self._take(block=not len(retry))
            stopping = any(b is _STOP for b in batches)
            batch = _combine([retry, *batches])
            retry = Batch()
            if len(batch) and not self._attempt(batch):
                attempts += 1
                if attempts < MAX_ATTEMPTS and not stopping:
                    retry = batch  # kept, and counted lost only after the last attempt
                else:
                    self._lose(batch)
            if not len(retry):
                attempts = 0
            if stopping:
                return

    def _attempt(self, batch: Batch) -> bool:
        try:
            return self._write(batch)
        except Exception:  # noqa: BLE001 - a bug (or a dead log stream) must not end the thread
            self._failures += 1
            self._close_connection()
            return False

    def _take(self, *, block: bool) -> list[Batch]:
        batches = [self._queue.get()] if block else []
        while len(batches) < MAX_BATCHES_PER_WRITE:
            try:
                batches.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batches

    def _write(self, batch: Batch) -> bool:
        try:
            conn = self._ready()
            with conn.cursor() as cur:
                cur.execute(self._write_sql, write_params(batch))
            self._prune(conn)
        except psycopg.Error as exc:
            self._failures += 1
            if self._conn is not None and (self._conn.closed or self._conn.broken):
                self._close_connection()
            self._log.error(
                "history_write_failed",
                error=connection.describe(exc, self._url),
                rows=len(batch),
                consecutive_failures=self._failures,
            )
            return False
        self._failures = 0
        with self._lock:
            self.written += len(batch)
        return True

    def _lose(self, batch: Batch) -> None:
        with self._lock:
            self.failed += len(batch)
            failed = self.failed
        self._log.error("history_rows_lost", rows=len(batch), failed_rows_total=failed)

    def _ready(self) -> psycopg.Connection[Any]:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        s = self._settings
        conn = self._connect(
            self._url,
            statement_timeout_ms=s.statement_timeout_ms,
            connect_timeout_seconds=s.connect_timeout_seconds,
        )
        try:
            version = migrations.current_version(conn, s.schema_name)
            if version < migrations.LATEST:
                if not s.create:
                    raise psycopg.errors.UndefinedTable(
                        f"history schema {s.schema_name!r} is at version {version}, needs "
                        f"{migrations.LATEST}: run `dynomatic history init` (or set create = true)"
                    )
                migrations.migrate(conn, s.schema_name)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        self._log.info("history_ready", schema=s.schema_name, version=migrations.LATEST)
        return conn

    def _prune(self, conn: psycopg.Connection[Any]) -> None:
        now = self._clock.monotonic()
        if now - self._pruned_at < PRUNE_EVERY_SECONDS:
            return
        self._pruned_at = now
        before = self._clock.now() - timedelta(days=self._settings.retention_days)
        params = {"app": self._app, "before": before, "limit": PRUNE_LIMIT}
        row = conn.execute(self._prune_sql, params).fetchone()
        if row and (row[0] or row[1]):
            self._log.info(
                "history_pruned", samples=row[0], events=row[1], before=before.isoformat()
            )

    def _close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
