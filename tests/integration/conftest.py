"""Fixtures for running the real daemon as a subprocess against Postgres and the Heroku stand-in."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import psycopg
import pytest
from daemon_support import API_KEY, DB_PASSWORD, FIXTURES, DaemonProcess
from psycopg import conninfo, sql

from dynomatic_daemon import config, wiring
from dynomatic_daemon.clock import SystemClock
from dynomatic_daemon.events import TickReport, observe
from dynomatic_daemon.sandbox.heroku_standin import HerokuStandIn


@pytest.fixture
def delayed_jobs(pg_conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    pg_conn.execute((FIXTURES / "delayed_job.sql").read_text())
    return pg_conn


@pytest.fixture
def secret_db_url(db_url: str) -> str:
    """The test database URL with a password in it, which trust auth ignores: a secret to hunt."""
    return conninfo.make_conninfo(db_url, password=DB_PASSWORD)


@pytest.fixture
def standin() -> Iterator[HerokuStandIn]:
    formation = {"web": 1, "worker": 1, "urgent1": 0, "urgent2": 0, "urgent3": 0}
    sizes = {"urgent1": "Basic", "urgent2": "Basic", "urgent3": "Basic"}
    with HerokuStandIn(app="my-app", api_key=API_KEY, formation=formation, sizes=sizes) as s:
        yield s


@pytest.fixture
def daemon_env(standin: HerokuStandIn, secret_db_url: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("DYNOMATIC_", "HEROKU_"))}
    return {
        **keep,
        "HEROKU_API_KEY": API_KEY,
        "DATABASE_URL": secret_db_url,
        "DYNOMATIC_HEROKU_API_URL": standin.url,
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Any]:
    started: list[DaemonProcess] = []

    def _spawn(args: list[str], env: Mapping[str, str], name: str = "daemon") -> DaemonProcess:
        proc = DaemonProcess(args, env, tmp_path / f"{name}-{len(started)}.log")
        started.append(proc)
        return proc

    yield _spawn
    for proc in started:
        proc.stop()


@pytest.fixture(scope="session")
def recorded_day(pg_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A day of the demo workload, accelerated, recorded in a database of its own (kept for the
    whole run: the per-test cleanup of ``pg_conn`` never touches it)."""
    from history_day import record_day  # noqa: PLC0415 - only the tests that use it pay

    name = f"dynomatic_day_{secrets.token_hex(4)}"
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield record_day(
            conninfo.make_conninfo(pg_server_url, dbname=name), tmp_path_factory.mktemp("day")
        )
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def day_page(recorded_day: Any) -> Iterator[str]:
    """The live status page over the recorded day, served as `dynomatic run --http-port` does
    (password ``history_day.DAY_PASSWORD``)."""
    from history_day import DAY_PASSWORD, NullLog  # noqa: PLC0415

    env = {**recorded_day.env(), "DYNOMATIC_STATUS_PASSWORD": DAY_PASSWORD}
    settings = config.load(recorded_day.config_path, env)
    loopback = settings.http.model_copy(update={"host": "127.0.0.1"})
    settings = settings.model_copy(update={"http": loopback})
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    watching = wiring.observe(settings, NullLog(), SystemClock(), http_port=port)
    with watching.stack:
        assert watching.server is not None
        # the "now" section shows the day's last tick, as it would at the end of that day
        # (told to the live status only: no event is written to the day's history)
        end, app = recorded_day.end, settings.heroku.app
        seen = tuple(observe(o, None, end) for o in recorded_day.last_tick)
        watching.live.on_tick(TickReport(app, end, "leader", seen))
        yield f"http://127.0.0.1:{watching.server.port}"
