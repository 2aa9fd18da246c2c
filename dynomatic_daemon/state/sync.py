"""The state store on a thread of its own, so a slow or dead database never delays a tick.

Each tick asks for a sync (``refresh``): the thread writes what was handed to it (spend, stored
overrides), then reads the guardrails in force and the spend totals, and publishes them as one
``Snapshot``. The tick waits for that answer only briefly (``wait_seconds``), and not at all while
the store is failing or a sync is stuck, so it carries on with the snapshot it has. The first
sync is awaited longer (``first_wait_seconds``): a daemon restarted during a pause must not
write on its first tick before it has read the pause.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dynomatic_daemon.clock import Clock
from dynomatic_daemon.logs import Logger
from dynomatic_daemon.state.store import Guard, SpendRow, Spent, StateStore

MAX_BACKOFF_SECONDS = 60.0
MAX_HELD_BATCHES = 10_000  # spend batches kept for a store that is down; the oldest go first


@dataclass(frozen=True)
class Put:
    """A guardrail to store (a manual override), numbered so the tick knows once it is in."""

    seq: int
    kind: str
    process_type: str
    seconds: float
    quantity: int | None
    reason: str
    by: str


@dataclass(frozen=True)
class Snapshot:
    guards: tuple[Guard, ...]
    spent: dict[str, Spent]
    spend_through: int  # every spend batch up to this number is in ``spent``
    puts_through: int  # every Put up to this number is stored


@dataclass
class _Inbox:
    spend: list[tuple[int, Sequence[SpendRow]]] = field(default_factory=list)
    puts: list[Put] = field(default_factory=list)


class StateSync:
    def __init__(self, store: StateStore, clock: Clock, log: Logger) -> None:
        self.store, self._clock, self._log = store, clock, log
        self._lock = threading.Condition()
        self._kick = threading.Event()
        self._stop = threading.Event()
        self._inbox = _Inbox()
        self._spend_seq = self._put_seq = 0
        self._generation = 0  # syncs finished, well or not
        self._busy_since: float | None = None
        self._failures = 0
        self._retry_at = float("-inf")
        self.snapshot: Snapshot | None = None
        self._thread = threading.Thread(target=self._run, name="dynomatic-state", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit_spend(self, rows: Sequence[SpendRow]) -> int:
        """Hand over spend to add; returns its number (0: nothing was handed)."""
        with self._lock:
            if rows:
                self._spend_seq += 1
                self._inbox.spend.append((self._spend_seq, tuple(rows)))
                del self._inbox.spend[:-MAX_HELD_BATCHES]
            return self._spend_seq

    def submit_put(self, **row: Any) -> int:
        with self._lock:
            self._put_seq += 1
            self._inbox.puts.append(Put(self._put_seq, **row))
            return self._put_seq

    def refresh(self, wait_seconds: float, first_wait_seconds: float) -> Snapshot | None:
        """Ask for a sync now, and wait a little for it while the store answers well."""
        with self._lock:
            # a sync already running may have read before this call: wait for the next one
            target = self._generation + (2 if self._busy_since is not None else 1)
            self._kick.set()
            wait = first_wait_seconds if self.snapshot is None else wait_seconds
            if self._failures or self._stuck(wait):
                return self.snapshot
            self._lock.wait_for(
                lambda: self._generation >= target or self._failures > 0, timeout=wait
            )
            return self.snapshot

    def close(self, timeout: float) -> None:
        """One last sync (the spend of the last ticks), bounded by ``timeout``, then stop."""
        self._stop.set()
        self._kick.set()
        self._thread.join(timeout)

    def _stuck(self, wait: float) -> bool:
        busy = self._busy_since
        return busy is not None and self._clock.monotonic() - busy > wait

    def _run(self) -> None:
        try:
            while True:
                self._kick.wait()
                self._kick.clear()
                stopping = self._stop.is_set()
                if stopping or self._clock.monotonic() >= self._retry_at:
                    self._sync()
                if stopping:
                    return
        finally:
            self.store.close()

    def _sync(self) -> None:
        with self._lock:
            spend, puts = list(self._inbox.spend), list(self._inbox.puts)
            spend_through, puts_through = self._spend_seq, self._put_seq
            self._busy_since = self._clock.monotonic()
        try:
            for p in puts:
                self.store.put(
                    p.kind, p.process_type, p.seconds, quantity=p.quantity, reason=p.reason, by=p.by
                )
            self.store.add_spend([row for _, rows in spend for row in rows])
            guards = tuple(self.store.active())
            totals = self.store.spent(self._clock.now().date())
        except Exception as exc:  # noqa: BLE001 - the store is never worth a stopped thread
            self._failed(exc)
            return
        with self._lock:
            self._inbox.spend = [b for b in self._inbox.spend if b[0] > spend_through]
            self._inbox.puts = [p for p in self._inbox.puts if p.seq > puts_through]
            self.snapshot = Snapshot(guards, totals, spend_through, puts_through)
            if self._failures:
                self._log.info("state_store_recovered", failures=self._failures)
            self._failures = 0
            self._finish()

    def _failed(self, exc: Exception) -> None:
        with self._lock:
            self._failures += 1
            wait = min(MAX_BACKOFF_SECONDS, 2.0 ** (self._failures - 1))
            self._retry_at = self._clock.monotonic() + wait
            self._finish()
        self._log.error(
            "state_store_failed",
            error=self.store.describe(exc),
            retry_in_seconds=wait,
            reason="keeping the guardrails last known; each still expires on time",
        )

    def _finish(self) -> None:
        self._busy_since = None
        self._generation += 1
        self._lock.notify_all()
