"""The one composition root: the only module that builds the daemon's collaborators.

``build`` turns validated settings into a ready ``Ticker`` (databases, queue readers, the Heroku
client, the formation keeper and the leader lock) and an ``ExitStack`` that closes all of them.
The command line, the demo and the tests all build through here, so they run the same wiring.
"""

from __future__ import annotations

import itertools
import signal
import threading
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from psycopg import conninfo
from pydantic import SecretStr

from dynomatic_daemon import adapters, config
from dynomatic_daemon.clock import Clock, SystemClock
from dynomatic_daemon.db import Database
from dynomatic_daemon.detect import resolve_auto
from dynomatic_daemon.errors import ConfigError, Problem, QueueReadError
from dynomatic_daemon.events import Hub, Sink
from dynomatic_daemon.formation_keeper import FormationKeeper
from dynomatic_daemon.heroku import HerokuClient
from dynomatic_daemon.history.recorder import Recorder
from dynomatic_daemon.history.writer import Writer
from dynomatic_daemon.leader import Leadership
from dynomatic_daemon.notify.notifier import Notifier
from dynomatic_daemon.tick import Ticker
from dynomatic_daemon.web.live import LiveStatus
from dynomatic_daemon.web.page import Page
from dynomatic_daemon.web.server import Credentials, StatusServer

HISTORY_CLOSE_SECONDS = 2.0  # at shutdown: write what is queued, within this
NOTIFY_CLOSE_SECONDS = 1.0
MEMORY_MINUTES = 24 * 60  # the page's in-memory window when history is off


@dataclass
class Built:
    ticker: Ticker
    stack: ExitStack
    detected: dict[str, str]  # library -> what auto-detection saw; empty when none was auto


def build(settings: config.Settings, log: Any, *, lock: bool, clock: Clock | None = None) -> Built:
    """Everything a tick needs; ``lock``: take part in leader election before any write."""
    stack = ExitStack()
    clock = clock or SystemClock()
    http = stack.enter_context(
        httpx.Client(base_url=settings.heroku.api_url, timeout=settings.heroku.timeout_seconds)
    )
    heroku = HerokuClient(
        http,
        app=settings.heroku.app,
        api_key=settings.heroku.api_key.get_secret_value(),
        max_retries=settings.heroku.max_retries,
    )
    by_env: dict[str, Database] = {}

    def database_for(adapter: str) -> Database:
        env_name, url = settings.url_for(adapter)
        if env_name not in by_env:
            by_env[env_name] = Database(settings.database.model_copy(update={"url": url}), clock)
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
        leadership = Leadership(
            settings.database, settings.heroku.app, clock, settings.heroku.resync_seconds
        )
        stack.callback(leadership.close)
    ticker = Ticker(settings, databases, keeper, readers, clock, log, leadership)
    return Built(ticker, stack, detected)


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
    settings: config.Settings, log: Any, clock: Clock, *, http_port: int | None = None
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
    log: Any,
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


def secrets_of(settings: config.Settings) -> list[str]:
    """Every secret value the process holds, and the password inside each database URL."""
    urls = [settings.database.url, *settings.database_urls.values()]
    found = [settings.heroku.api_key.get_secret_value()]
    urls += [settings.history.url] if settings.history.url else []
    found += [settings.http.password.get_secret_value()] if settings.http.password else []
    found += [part for n in settings.notify if n.url for part in webhook_secrets(n.url)]
    for url in urls:
        value = url.get_secret_value()
        found.append(value)
        password = conninfo.conninfo_to_dict(value).get("password")
        if password:
            found.append(str(password))
    return found


def webhook_secrets(url: SecretStr) -> list[str]:
    """A webhook URL, and its path and query, where services put the token (Slack's is all path)."""
    value = url.get_secret_value()
    parts = urlsplit(value)
    tail = parts.path + (f"?{parts.query}" if parts.query else "")
    return [value, tail] if len(tail) >= 8 else [value]


def build_when_ready(settings: config.Settings, log: Any) -> Built | None:
    """Build, waiting out a database that cannot answer auto-detection yet (a restart, say):
    a daemon that exits on a database fault would only be restarted into the same fault."""
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
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
