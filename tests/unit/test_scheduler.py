"""The loop around the ticks: a tick that raises, a tick that outlives the grace, a signal.

``DaemonLoop.run`` installs signal handlers, so it runs on the test's main thread; each test stops
it from a tick or from a helper thread once the event it waits for has happened.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import pytest

from dynomatic_daemon import scheduler
from dynomatic_daemon.clock import SystemClock
from dynomatic_daemon.scheduler import DaemonLoop

INTERVAL = 0.05
WAIT = 10.0  # seconds; only reached when the behaviour under test is broken


class Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def info(self, event: str, **fields: Any) -> None:
        self.lines.append(("info", event, fields))

    def warning(self, event: str, **fields: Any) -> None:
        self.lines.append(("warning", event, fields))

    def error(self, event: str, **fields: Any) -> None:
        self.lines.append(("error", event, fields))

    def events(self) -> list[str]:
        return [event for _, event, _ in self.lines]


def test_a_tick_that_raises_is_logged_and_the_next_tick_still_runs() -> None:
    log, calls = Log(), []
    loop: DaemonLoop

    def tick() -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("boom")
        loop.stop()

    loop = DaemonLoop(tick, INTERVAL, log, clock=SystemClock())
    assert loop.run() is True
    assert len(calls) == 2
    assert ("error", "tick_failed", {"error": "RuntimeError: boom"}) in log.lines
    assert log.events()[-1] == "daemon_stopped"


def test_a_tick_still_running_after_the_grace_is_abandoned_and_said_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(scheduler, "SHUTDOWN_GRACE_SECONDS", 0.2)
    log, started, release = Log(), threading.Event(), threading.Event()

    def tick() -> None:
        started.set()
        release.wait(WAIT)  # a tick stuck on a hung request

    loop = DaemonLoop(tick, INTERVAL, log, clock=SystemClock())

    def stop_once_the_tick_hangs() -> None:
        started.wait(WAIT)
        loop.stop()

    helper = threading.Thread(target=stop_once_the_tick_hangs)
    helper.start()
    try:
        assert loop.run() is False
    finally:
        release.set()
        helper.join()
    assert ("warning", "shutdown_tick_abandoned", {"grace_seconds": 0.2}) in log.lines
    assert log.events()[-2:] == ["shutdown_tick_abandoned", "daemon_stopped"]


def test_a_tick_that_ends_within_the_grace_is_waited_for() -> None:
    log, started, ended = Log(), threading.Event(), threading.Event()
    loop: DaemonLoop

    def tick() -> None:
        started.set()
        loop.stop()  # the signal arrives while this tick is still working
        ended.set()

    loop = DaemonLoop(tick, INTERVAL, log, clock=SystemClock())
    assert loop.run() is True
    assert ended.is_set() and "shutdown_tick_abandoned" not in log.events()


def test_a_signal_stops_the_loop_and_sets_the_stop_flag_the_tick_reads() -> None:
    log, stopping, ticked = Log(), threading.Event(), threading.Event()
    loop = DaemonLoop(ticked.set, INTERVAL, log, clock=SystemClock(), stopping=stopping)

    def signal_after_a_tick() -> None:
        ticked.wait(WAIT)
        os.kill(os.getpid(), signal.SIGTERM)

    helper = threading.Thread(target=signal_after_a_tick)
    before = signal.getsignal(signal.SIGTERM)
    helper.start()
    assert loop.run() is True
    helper.join()
    assert stopping.is_set()
    assert ("info", "shutdown_requested", {"signal": "SIGTERM"}) in log.lines
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is put back
