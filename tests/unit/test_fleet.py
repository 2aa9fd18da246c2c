"""The fleet: a hanging app holds one thread, not the others' turns; a stop reaches every app."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dynomatic_daemon import apps_config, config
from dynomatic_daemon.clock import SystemClock
from dynomatic_daemon.errors import QueueReadError
from dynomatic_daemon.fleet import Fleet

APP = """
[[app]]
name = "{name}"
[[app.process]]
type = "worker"
adapter = "delayed_job"
rules = [{{ at_least = 0, dynos = 1 }}]
"""
HEAD = """
[defaults.heroku]
api_url = "http://127.0.0.1:9"
[defaults.daemon]
interval_seconds = 0.1
"""
ENV = {"HEROKU_API_KEY": "hk-0123456789", "DATABASE_URL": "postgresql://u@127.0.0.1/d"}


class Quiet:
    def info(self, event: str, **fields: Any) -> None:
        pass

    warning = error = info


class FakeTicker:
    def __init__(self, tick: Callable[[], object]) -> None:
        self._tick = tick
        self.stopping = threading.Event()
        self.leadership = None

    def tick(self) -> object:
        return self._tick()


def settings(tmp_path: Path, *names: str) -> tuple[config.Settings, ...]:
    path = tmp_path / "apps.toml"
    path.write_text(HEAD + "".join(APP.format(name=n) for n in names))
    return apps_config.load(path, ENV).apps


def test_a_hanging_app_does_not_delay_the_others_and_a_stop_reaches_every_app(
    tmp_path: Path,
) -> None:
    release = threading.Event()
    ticks: dict[str, int] = {"fast-app": 0, "hung-app": 0}
    tickers: dict[str, FakeTicker] = {}
    fleet: Fleet

    def tick_of(app: str) -> Callable[[], object]:
        def tick() -> object:
            ticks[app] += 1
            if app == "hung-app":
                release.wait(5)
            elif ticks[app] == 20:
                fleet.stop()  # twenty turns of the fast app while the other hangs: enough
            return None

        return tick

    def build(one: config.Settings) -> tuple[Any, Callable[[], object]]:
        ticker = tickers[one.heroku.app] = FakeTicker(tick_of(one.heroku.app))
        return ticker, lambda: None

    fleet = Fleet(
        settings(tmp_path, "hung-app", "fast-app"),
        Quiet(),
        build=build,
        clock=SystemClock(),
        concurrency=2,
    )
    timer = threading.Timer(4.0, fleet.stop)  # a guard: without isolation the test ends here
    timer.start()
    try:
        fleet.run()
    finally:
        timer.cancel()
        release.set()
    assert ticks["fast-app"] >= 20 and ticks["hung-app"] == 1
    assert all(t.stopping.is_set() for t in tickers.values())
    assert max(fleet.lags) < 1.0


def test_an_app_whose_database_is_down_at_start_is_retried_while_the_others_tick(
    tmp_path: Path,
) -> None:
    attempts: dict[str, int] = {"down-app": 0, "up-app": 0}
    fleet: Fleet

    def build(one: config.Settings) -> tuple[Any, Callable[[], object]]:
        app = one.heroku.app
        attempts[app] += 1
        if app == "down-app" and attempts[app] < 2:
            raise QueueReadError("connection refused")

        def tick() -> None:
            if app == "down-app":
                fleet.stop()  # built on its second turn, and ticking

        return FakeTicker(tick), lambda: None

    fleet = Fleet(
        settings(tmp_path, "down-app", "up-app"),
        Quiet(),
        build=build,
        clock=SystemClock(),
        concurrency=2,
    )
    timer = threading.Timer(5.0, fleet.stop)
    timer.start()
    try:
        fleet.run()
    finally:
        timer.cancel()
    assert attempts == {"down-app": 2, "up-app": 1}
