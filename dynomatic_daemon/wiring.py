"""The one composition root: the only module that builds the daemon's collaborators.

``build`` turns validated settings into a ready ``Ticker`` (databases, queue readers, the Heroku
client, the formation keeper and the leader lock) and an ``ExitStack`` that closes all of them.
The command line, the demo and the tests all build through here, so they run the same wiring.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import threading
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from dynomatic_daemon import adapters, config
from dynomatic_daemon.addresses import secrets_in
from dynomatic_daemon.clock import Clock, SystemClock
from dynomatic_daemon.db import Database
from dynomatic_daemon.detect import resolve_auto
from dynomatic_daemon.errors import ConfigError, Problem, QueueReadError
from dynomatic_daemon.events import NO_OBSERVER, Hub, Observer, Sink
from dynomatic_daemon.formation_keeper import FormationKeeper
from dynomatic_daemon.guard_config import store_target
from dynomatic_daemon.heroku import Budget, HerokuClient
from dynomatic_daemon.history.recorder import Recorder
from dynomatic_daemon.history.writer import Writer
from dynomatic_daemon.leader import Leadership
from dynomatic_daemon.logs import Logger
from dynomatic_daemon.notify.notifier import Notifier
from dynomatic_daemon.scheduler import STOP_SIGNALS, DaemonLoop
from dynomatic_daemon.shared import Shared
from dynomatic_daemon.state.guardian import Guardian
from dynomatic_daemon.state.store import StateStore
from dynomatic_daemon.tick import Ticker
from dynomatic_daemon.web.live import LiveStatus
from dynomatic_daemon.web.page import Page
from dynomatic_daemon.web.server import Credentials, StatusServer

HISTORY_CLOSE_SECONDS = 2.0  # at shutdown: write what is queued, within this
NOTIFY_CLOSE_SECONDS = 1.0
MEMORY_MINUTES = 24 * 60  # the page's in-memory window when history is off

# A stopped leader's lock lapses after 1.5 intervals (but not under a second, which a busy
# machine's scheduling could miss), so a standby takes over within about 2.5 intervals.
LEASE_INTERVALS = 1.5
MIN_LEASE_SECONDS = 1.0


@dataclass
class Built:
    ticker: Ticker
    stack: ExitStack
    detected: dict[str, str]  # library -> what auto-detection saw; empty when none was auto


def instance_name(pid: int | None = None) -> str:
    """A copy of the daemon (this one by default), as ``pid@host``: it is named in the
    User-Agent of each API request and in the application_name of the lock's session."""
    return f"{pid or os.getpid()}@{socket.gethostname()[:40]}"


def lease_seconds(settings: config.Settings) -> float:
    return max(MIN_LEASE_SECONDS, LEASE_INTERVALS * settings.daemon.interval_seconds)


def build(
    settings: config.Settings,
    log: Logger,
    *,
    lock: bool,
    clock: Clock | None = None,
    budget: Budget | None = None,
    shared: Shared | None = None,
) -> Built:
    """Everything a tick needs; ``lock``: take part in leader election before any write;
    ``budget``: the API budget this app shares with the other apps of its token; ``shared``:
    the HTTP clients, read connections and lock sessions of a scaler's apps (it closes them)."""
    stack = ExitStack()
    clock = clock or SystemClock()
    stopping = threading.Event()
    instance = instance_name()
    if shared is not None:
        http = shared.http(settings.heroku)
    else:
        http = stack.enter_context(
            httpx.Client(base_url=settings.heroku.api_url, timeout=settings.heroku.timeout_seconds)
        )
    heroku = HerokuClient(
        http,
        app=settings.heroku.app,
        api_key=settings.heroku.api_key.get_secret_value(),
        max_retries=settings.heroku.max_retries,
        sleep=stopping.wait,  # a signal cuts a backoff short (and the retry is then refused)
        instance=instance,
        budget=budget,
    )
    by_env: dict[str, Database] = {}

    def database_for(adapter: str) -> Database:
        env_name, url = settings.url_for(adapter)
        if env_name not in by_env:
            database = settings.database.model_copy(update={"url": url})
            if shared is not None:
                by_env[env_name] = shared.database(database)
            else:
                by_env[env_name] = Database(database, clock)
                stack.callback(by_env[env_name].close)
        return by_env[env_name]

    try:
        settings, detected = resolve_auto(settings, database_for)
        used = sorted({p.adapter for p in settings.process})
        readers = {name: adapters.build(name, settings.adapter_options(name)) for name in used}
        databases = {name: database_for(name) for name in used}
    except BaseException:
        stack.close()  # what was opened so far must not outlive a failed start
        raise
    managed = frozenset(t for p in settings.process for t in p.formation_types)
    keeper = FormationKeeper(heroku, clock, settings.heroku.resync_seconds, managed)
    leadership = None
    if lock:
        make = shared.leadership if shared is not None else Leadership
        leadership = make(
            settings.database,
            settings.heroku.app,
            lease_seconds=lease_seconds(settings),
            instance=instance,
        )
        stack.callback(leadership.close)
    ticker = Ticker(settings, databases, keeper, readers, clock, log, leadership, stopping=stopping)
    ticker.guardian = guardian(settings, heroku, clock, log, ticker)
    stack.callback(ticker.guardian.close)
    return Built(ticker, stack, detected)


def state_store(settings: config.Settings, purpose: str) -> StateStore | None:
    """The daemon's state store ([state], else [history]'s schema), or None when neither is on."""
    target = store_target(settings.state, settings.history)
    return None if target is None else StateStore(target, settings.heroku.app, purpose)


def guardian(
    settings: config.Settings, heroku: HerokuClient, clock: Clock, log: Logger, ticker: Ticker
) -> Guardian:
    def event(app: str, kind: str, **fields: Any) -> None:
        ticker.observer.event(app, kind, **fields)  # the observer is set after the build

    store = state_store(settings, "dynomatic-state")
    return Guardian(settings, heroku, clock, log, store, event)


@dataclass
class Observing:
    """Who hears of each tick: the live status, and history, notifiers and the page if on."""

    hub: Hub
    stack: ExitStack  # closing it stops the page, then flushes notifiers and history
    live: LiveStatus
    writer: Writer | None
    notifiers: list[Notifier]
    server: StatusServer | None


def observe(
    settings: config.Settings, log: Logger, clock: Clock, *, http_port: int | None = None
) -> Observing:
    """Start what watches the ticks; each works on its own thread and never blocks a tick."""
    app, interval = settings.heroku.app, settings.daemon.interval_seconds
    minutes = int(min(settings.http.page_hours * 60, MEMORY_MINUTES))
    live = LiveStatus(app, clock, interval, minutes)
    stack, sinks, writer, notifiers = ExitStack(), list[Sink]([live]), None, []
    try:
        if settings.history.enabled:
            writer = Writer(settings.history, app, clock, log)
            writer.start()
            stack.callback(writer.close, HISTORY_CLOSE_SECONDS)
            recorder = Recorder(writer, app, interval)
            stack.callback(recorder.flush)  # runs first: the open minute goes out too
            sinks.append(recorder)
        for i, target in enumerate(settings.notify):
            notifier = Notifier(target, f"notify[{i}]:{target.kind}", clock, log)
            notifier.start()
            stack.callback(notifier.close, NOTIFY_CLOSE_SECONDS)
            sinks.append(notifier)
            notifiers.append(notifier)
        server = _status_server(
            settings,
            log,
            clock=clock,
            live=live,
            writer=writer,
            notifiers=notifiers,
            http_port=http_port,
        )
        if server is not None:
            server.start()
            stack.callback(server.stop)
    except BaseException:
        stack.close()
        raise
    return Observing(Hub(sinks, clock, log), stack, live, writer, notifiers, server)


def _status_server(
    settings: config.Settings,
    log: Logger,
    *,
    clock: Clock,
    live: LiveStatus,
    writer: Writer | None,
    notifiers: list[Notifier],
    http_port: int | None,
) -> StatusServer | None:
    http = settings.http
    port = http_port or http.port
    if not port:
        return None
    if http.password is None:
        why = "not set; the status page serves nothing without a password (or token)"
        raise ConfigError([Problem(http.password_env, why)])

    def counters() -> dict[str, dict[str, int]]:
        found = {n.name: dict(n.counts) for n in notifiers}
        if writer is not None:
            found["history"] = {
                "written": writer.written,
                "dropped": writer.dropped,
                "failed": writer.failed,
            }
        return found

    page = Page(
        settings.heroku.app,
        live,
        clock,
        http=http,
        history=settings.history,
        counters=counters,
        log=log,
    )
    return StatusServer(
        host=http.host,
        port=port,
        credentials=Credentials(http.username, http.password),
        live=live,
        page=page.html,
        counters=counters,
        stalled_after_seconds=settings.daemon.stalled_after_intervals
        * settings.daemon.interval_seconds,
        log=log,
    )


def daemon_loop(ticker: Ticker, log: Logger, observer: Observer = NO_OBSERVER) -> DaemonLoop:
    """The scheduler loop for a built ticker, with the keepalive that renews the lock's lease."""
    daemon = ticker.settings.daemon
    leadership = ticker.leadership
    return DaemonLoop(
        ticker.tick,
        daemon.interval_seconds,
        log,
        clock=ticker.clock,
        stopping=ticker.stopping,
        stalled_after=daemon.stalled_after_intervals,
        keepalive=leadership.keepalive if leadership else None,
        lease_seconds=leadership.lease_seconds if leadership else 0.0,
        observer=observer,
        app=ticker.settings.heroku.app,
    )


def secrets_of(settings: config.Settings) -> list[str]:
    """Every secret value the process holds, and the password inside each database URL."""
    urls = [settings.database.url, *settings.database_urls.values()]
    found = [settings.heroku.api_key.get_secret_value()]
    urls += [settings.history.url] if settings.history.url else []
    urls += [settings.state.url] if settings.state.url else []
    found += [settings.http.password.get_secret_value()] if settings.http.password else []
    found += [part for n in settings.notify if n.url for part in webhook_secrets(n.url)]
    for url in urls:
        found += secrets_in(url.get_secret_value())  # never raises, even on a malformed URL
    return found


def webhook_secrets(url: SecretStr) -> list[str]:
    """A webhook URL, and its path and query, where services put the token (Slack's is all path)."""
    value = url.get_secret_value()
    parts = urlsplit(value)
    tail = parts.path + (f"?{parts.query}" if parts.query else "")
    return [value, tail] if len(tail) >= 8 else [value]


def build_when_ready(settings: config.Settings, log: Logger) -> Built | None:
    """Build, waiting out a database that cannot answer auto-detection yet (a restart, say):
    a daemon that exits on a database fault would only be restarted into the same fault."""
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in STOP_SIGNALS}
    try:
        for attempt in itertools.count():
            try:
                return build(settings, log, lock=True)
            except QueueReadError as exc:
                wait = min(60.0, 2.0**attempt)
                log.error("startup_waiting_for_database", error=str(exc), retry_in_seconds=wait)
                if stop.wait(wait):
                    return None
        return None  # unreachable; keeps mypy sure of the return type
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
