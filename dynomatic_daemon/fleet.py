"""Several apps from one scaler: one Ticker per app, ticked side by side with bounded concurrency.

Each app is built (``wiring.build``) into a Ticker of its own: its own databases, queue readers,
formation keeper, Heroku client and leader lock (keyed by the app, on the app's database), so
two scalers can split apps between them and a standby takes over only the apps whose leader
died. Nothing is shared between apps but a token's API budget (``budget.py``) and the threads.

How a slow app cannot delay the others: every app has its own interval job on one scheduler;
the jobs run on a pool of ``[fleet] concurrency`` threads, one tick per app at a time
(``max_instances=1``; a late tick is coalesced, never queued twice). A tick is bounded by the
database's connect and statement timeouts and the API's timeout, so a broken app holds one
thread for at most that long; the others keep their turns as long as fewer apps than
``concurrency`` hang at the same moment. First ticks are spread over the interval, so a hundred
apps do not all read (and list their formations) in the same second.

An app that cannot be built yet (its database down at start) is retried at its own turns with a
doubling wait; the others start at once. ``fleet_ticks`` lines report, every
``SUMMARY_SECONDS``, how late ticks started (p99 and max) and how many were late by more than
an interval.
"""

from __future__ import annotations

import signal
import threading
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, timedelta
from types import FrameType
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.blocking import BlockingScheduler

from dynomatic_daemon import config, memory
from dynomatic_daemon.clock import Clock
from dynomatic_daemon.errors import QueueReadError
from dynomatic_daemon.logs import Logger
from dynomatic_daemon.scheduler import (
    KEEPALIVES_PER_LEASE,
    RELEASE_EVERY_TICKS,
    SHUTDOWN_GRACE_SECONDS,
    STOP_SIGNALS,
)
from dynomatic_daemon.tick import Ticker

SUMMARY_SECONDS = 30.0
MAX_BUILD_WAIT_SECONDS = 60.0
KEEPALIVE_THREADS = 4
LAG_SAMPLES = 100_000

# Builds one app's ticker; returns it and what closes its connections and lock.
Build = Callable[[config.Settings], tuple[Ticker, Callable[[], object]]]


@dataclass
class Member:
    """One app of the fleet: its settings, and its ticker once built."""

    settings: config.Settings
    log: Logger
    offset: float  # seconds after the start of its first tick, to spread the apps
    ticker: Ticker | None = None
    close: Callable[[], object] = lambda: None
    last_done: float = 0.0
    due: float = 0.0  # monotonic time this app's next tick is due
    build_attempts: int = 0
    build_after: float = 0.0
    ticks: int = 0

    @property
    def app(self) -> str:
        return self.settings.heroku.app

    @property
    def interval(self) -> float:
        return self.settings.daemon.interval_seconds


class Fleet:
    """Run every app's tick on one scheduler until a signal; see the module docstring."""

    def __init__(
        self,
        apps: Sequence[config.Settings],
        log: Logger,
        *,
        build: Build,
        clock: Clock,
        concurrency: int,
        app_log: Callable[[str], Any] | None = None,
    ) -> None:
        self._log, self._clock, self._build = log, clock, build
        shortest = min(s.daemon.interval_seconds for s in apps)
        self.members = [
            Member(s, (app_log or (lambda _: log))(s.heroku.app), shortest * i / len(apps))
            for i, s in enumerate(apps)
        ]
        self._busy = 0
        self._ticks = 0
        self._idle = threading.Condition()
        self._stopping = threading.Event()
        self.lags: deque[float] = deque(maxlen=LAG_SAMPLES)  # seconds each tick started late
        self._window: list[float] = []
        self._window_lock = threading.Lock()
        self._scheduler = BlockingScheduler(
            executors={
                "default": ThreadPoolExecutor(max_workers=concurrency),
                "watchdog": ThreadPoolExecutor(max_workers=1),
                "keepalive": ThreadPoolExecutor(max_workers=KEEPALIVE_THREADS),
            },
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=UTC,
        )
        now, start = clock.now(), clock.monotonic()
        for i, member in enumerate(self.members):
            member.last_done = member.due = start + member.offset
            self._scheduler.add_job(
                self._run_tick,
                "interval",
                args=(member,),
                seconds=member.interval,
                next_run_time=now + timedelta(seconds=member.offset),
                id=f"tick-{i}",
            )
            lease = 1.5 * member.interval  # wiring.LEASE_INTERVALS: renewed 4 times a lease
            self._scheduler.add_job(
                self._renew,
                "interval",
                args=(member,),
                seconds=max(0.25, lease / KEEPALIVES_PER_LEASE),
                executor="keepalive",
                id=f"keepalive-{i}",
            )
        self._scheduler.add_job(
            self._watch, "interval", seconds=shortest, executor="watchdog", id="watchdog"
        )
        self._scheduler.add_job(
            self._summary, "interval", seconds=SUMMARY_SECONDS, executor="watchdog", id="summary"
        )

    def run(self) -> bool:
        """Block until a signal; wait (bounded) for ticks in flight; False if one hung."""
        previous = {s: signal.signal(s, self._on_signal) for s in STOP_SIGNALS}
        try:
            self._scheduler.start()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        with self._idle:
            clean = self._idle.wait_for(lambda: self._busy == 0, SHUTDOWN_GRACE_SECONDS)
        if not clean:
            self._log.warning("shutdown_tick_abandoned", grace_seconds=SHUTDOWN_GRACE_SECONDS)
        self._log.info("daemon_stopped", apps=len(self.members))
        return clean

    def stop(self) -> None:
        self._stopping.set()
        for member in self.members:
            if member.ticker is not None:
                member.ticker.stopping.set()  # a tick in flight sends nothing more
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._log.info("shutdown_requested", signal=signal.Signals(signum).name)
        self.stop()

    def _run_tick(self, member: Member) -> None:
        if self._stopping.is_set():
            return
        started = self._clock.monotonic()
        self._note_lag(member, started)
        with self._idle:
            self._busy += 1
        try:
            if member.ticker is None and not self._built(member, started):
                return
            if member.ticker is not None:
                member.ticker.tick()
        except Exception as exc:  # noqa: BLE001 - the fleet must outlive any bug in one tick
            member.log.error("tick_failed", error=f"{type(exc).__name__}: {exc}")
        else:
            member.last_done = self._clock.monotonic()
            member.ticks += 1
            with self._idle:
                self._ticks += 1
                release = self._ticks % RELEASE_EVERY_TICKS == 1  # the whole fleet's ticks
            if release:
                memory.release()
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def _note_lag(self, member: Member, started: float) -> None:
        lag = max(0.0, started - member.due)
        while member.due <= started:
            member.due += member.interval
        self.lags.append(lag)
        with self._window_lock:
            self._window.append(lag)
        if lag > member.interval:
            member.log.warning("tick_late", seconds_late=round(lag, 2))

    def _built(self, member: Member, now: float) -> bool:
        """Build this app's ticker if its turn has come; False while it cannot be built."""
        if now < member.build_after:
            return False
        try:
            member.ticker, member.close = self._build(member.settings)
        except QueueReadError as exc:
            wait = min(MAX_BUILD_WAIT_SECONDS, 2.0**member.build_attempts)
            member.build_attempts += 1
            member.build_after = now + wait
            member.log.error("startup_waiting_for_database", error=str(exc), retry_in_seconds=wait)
            return False
        if self._stopping.is_set():  # a signal came while it was built: no tick, no write
            member.ticker.stopping.set()
            return False
        member.log.info(
            "app_started",
            processes=",".join(p.type for p in member.settings.process),
            interval_seconds=member.interval,
            dry_run=member.settings.daemon.dry_run,
        )
        return True

    def _renew(self, member: Member) -> None:
        # Only while this app's ticks complete: a stuck app's lease must run out.
        ticker = member.ticker
        stalled_after = member.settings.daemon.stalled_after_intervals * member.interval
        silent = self._clock.monotonic() - member.last_done
        if ticker is not None and ticker.leadership is not None and silent < stalled_after:
            ticker.leadership.keepalive()

    def _watch(self) -> None:
        now = self._clock.monotonic()
        for member in self.members:
            silent = now - member.last_done
            stalled_after = member.settings.daemon.stalled_after_intervals * member.interval
            if silent >= stalled_after and not self._stopping.is_set():
                member.log.error(
                    "scaler_stalled",
                    seconds_since_last_tick=round(silent, 1),
                    reason="no tick of this app has completed; its database or API may be stuck",
                )
                if member.ticker is not None:  # its notifiers hear of it, as for one app
                    member.ticker.observer.event(
                        member.app, "stalled", seconds_since_last_tick=round(silent, 1)
                    )

    def _summary(self) -> None:
        with self._window_lock:
            window, self._window = self._window, []
        if not window:
            return
        window.sort()
        self._log.info(
            "fleet_ticks",
            apps=len(self.members),
            ticks=len(window),
            lag_p50_seconds=round(window[len(window) // 2], 3),
            lag_p99_seconds=round(window[min(len(window) - 1, int(len(window) * 0.99))], 3),
            lag_max_seconds=round(window[-1], 3),
            late_over_1s=sum(1 for lag in window if lag > 1.0),
        )

    def close(self) -> None:
        """Release every app's connections and lock (each, even if another's close fails)."""
        with ExitStack() as stack:
            for member in self.members:
                stack.callback(member.close)
