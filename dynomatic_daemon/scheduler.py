"""The only module that imports APScheduler: run ``tick`` every interval until a signal.

One interval job, never two at once (``max_instances=1``), late runs coalesced into one.
SIGTERM, SIGINT and SIGHUP (a closed terminal; there is no reload) all stop the daemon: the
signal sets ``stopping`` (a tick in flight then sends no request and no retry) and stops the
scheduler; the tick in flight may finish for a few seconds, then the process exits.

A watchdog on its own thread logs an error-level ``scaler_stalled`` line every interval while no
tick has completed for ``stalled_after`` intervals (a stuck database or API), so the failure shows
in the log stream instead of passing in silence. A keepalive on a third thread renews the leader
lock's lease while ticks complete; once they stop completing it stops too, so a stuck leader
loses the lock to a standby.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from datetime import UTC
from types import FrameType

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.blocking import BlockingScheduler

from dynomatic_daemon import memory
from dynomatic_daemon.clock import Clock
from dynomatic_daemon.events import NO_OBSERVER, Observer
from dynomatic_daemon.logs import Logger

SHUTDOWN_GRACE_SECONDS = 4.0
RELEASE_EVERY_TICKS = 1000  # after the first tick, then now and then
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
KEEPALIVES_PER_LEASE = 4  # the lease survives three missed keepalives


class DaemonLoop:
    def __init__(
        self,
        tick: Callable[[], object],
        interval_seconds: float,
        log: Logger,
        *,
        clock: Clock,
        stopping: threading.Event | None = None,
        stalled_after: int = 3,
        observer: Observer = NO_OBSERVER,
        app: str = "",
        keepalive: Callable[[], object] | None = None,
        lease_seconds: float = 0.0,
    ) -> None:
        self._observer, self._app = observer, app  # told of a stall, as the log is
        self._clock = clock
        self._tick = tick
        self._log = log
        self._interval = interval_seconds
        self._stalled_after = stalled_after * interval_seconds
        self._busy = threading.Lock()
        self._stopping = stopping or threading.Event()
        self._last_done = self._clock.monotonic()
        self._ticks = 0
        self._keepalive = keepalive
        self._scheduler = BlockingScheduler(
            executors={
                "default": ThreadPoolExecutor(max_workers=1),
                "watchdog": ThreadPoolExecutor(max_workers=1),
                "keepalive": ThreadPoolExecutor(max_workers=1),
            },
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=UTC,
        )
        self._scheduler.add_job(
            self._run_tick,
            "interval",
            seconds=interval_seconds,
            next_run_time=clock.now(),
            id="tick",
        )
        self._scheduler.add_job(
            self._watch, "interval", seconds=interval_seconds, executor="watchdog", id="watchdog"
        )
        if keepalive is not None and lease_seconds > 0:
            every = lease_seconds / KEEPALIVES_PER_LEASE
            self._scheduler.add_job(
                self._renew, "interval", seconds=every, executor="keepalive", id="keepalive"
            )

    def run(self) -> bool:
        """Block until a signal arrives; wait (bounded) for the tick in flight; False if it hung."""
        previous = {s: signal.signal(s, self._on_signal) for s in STOP_SIGNALS}
        try:
            self._scheduler.start()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        clean = self._busy.acquire(timeout=SHUTDOWN_GRACE_SECONDS)
        if clean:
            self._busy.release()
        else:
            self._log.warning("shutdown_tick_abandoned", grace_seconds=SHUTDOWN_GRACE_SECONDS)
        self._log.info("daemon_stopped")
        return clean

    def stop(self) -> None:
        if not self._stopping.is_set():
            self._stopping.set()
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._log.info("shutdown_requested", signal=signal.Signals(signum).name)
        self._stopping.set()  # at once: a tick in flight sends nothing more
        # The handler runs on the main thread, which may be inside the scheduler's own wait
        # holding its Event's (non-reentrant) lock; shutting the scheduler down from here would
        # then wait for that lock forever, so another thread does it.
        threading.Thread(target=self.stop, name="dynomatic-stop", daemon=True).start()

    def _run_tick(self) -> None:
        if self._stopping.is_set():
            return
        with self._busy:
            try:
                self._tick()
            except Exception as exc:  # noqa: BLE001 - the loop must outlive any bug in one tick
                self._log.error("tick_failed", error=f"{type(exc).__name__}: {exc}")
            else:
                self._last_done = self._clock.monotonic()
                self._ticks += 1
                if self._ticks % RELEASE_EVERY_TICKS == 1:
                    memory.release()

    def _renew(self) -> None:
        # Only while ticks complete: a leader whose ticks hang must let its lease run out.
        silent = self._clock.monotonic() - self._last_done
        if self._keepalive is not None and silent < self._stalled_after:
            self._keepalive()

    def _watch(self) -> None:
        silent = self._clock.monotonic() - self._last_done
        if silent >= self._stalled_after and not self._stopping.is_set():
            self._log.error(
                "scaler_stalled",
                seconds_since_last_tick=round(silent, 1),
                reason="no tick has completed; the database or the Heroku API may be stuck",
            )
            self._observer.event(self._app, "stalled", seconds_since_last_tick=round(silent, 1))
