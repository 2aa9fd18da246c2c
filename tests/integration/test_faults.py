"""Database and Heroku faults, one tick at a time, against real Postgres and the stand-in.

Each test asserts what was logged, what the stand-in received, and that no fault ever lowered
the formation or escaped the tick.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import structlog
from daemon_support import API_KEY, DB_PASSWORD, enqueue
from psycopg import conninfo
from structlog.testing import capture_logs

from dynomatic_daemon import config, wiring
from dynomatic_daemon.sandbox.embedded_pg import EmbeddedPostgres
from dynomatic_daemon.sandbox.heroku_standin import HerokuStandIn
from dynomatic_daemon.sandbox.schemas import SCHEMAS
from dynomatic_daemon.tick import Ticker

pytestmark = pytest.mark.postgres

CONFIG = """
[heroku]
app = "my-app"
resync_seconds = 0
max_retries = 1
timeout_seconds = 1
releases_poll_seconds = 0  # these tests count every formation call

[database]
statement_timeout_ms = 500
connect_timeout_seconds = 2

[[process]]
type = "worker"
adapter = "delayed_job"
scale_down_delay_seconds = 0
rules = [ { at_least = 0, dynos = 1 }, { at_least = 10, dynos = 5 }, { at_least = 20, dynos = 10 } ]
"""


class Harness:
    """A Ticker built by the real CLI wiring, with its log lines captured per tick."""

    def __init__(self, tmp_path: Path, standin: HerokuStandIn, db_url: str, text: str = CONFIG):
        path = tmp_path / "dynomatic.toml"
        path.write_text(text)
        env = {
            "HEROKU_API_KEY": API_KEY,
            "DATABASE_URL": db_url,
            "DYNOMATIC_HEROKU_API_URL": standin.url,
        }
        self.settings = config.load(path, env)
        self.built = wiring.build(self.settings, structlog.get_logger(), lock=True)
        self.ticker: Ticker = self.built.ticker
        self.standin = standin

    def tick(self) -> list[dict[str, Any]]:
        with capture_logs() as logs:
            self.ticker.tick()
        return logs

    def decision(self, logs: list[dict[str, Any]]) -> dict[str, Any]:
        (line,) = [e for e in logs if e["event"] == "scale_decision"]
        return line

    def close(self) -> None:
        self.built.stack.close()


@pytest.fixture
def harness(
    tmp_path: Path,
    standin: HerokuStandIn,
    secret_db_url: str,
    delayed_jobs: psycopg.Connection[Any],
) -> Iterator[Harness]:
    h = Harness(tmp_path, standin, secret_db_url)
    yield h
    h.close()


def kill_daemon_connections(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE application_name = 'dynomatic' AND datname = current_database()"
        " AND pid <> pg_backend_pid()"
    ).fetchone()
    return int(row[0]) if row else 0


def test_a_killed_connection_holds_the_formation_then_reconnects(
    harness: Harness, delayed_jobs: psycopg.Connection[Any], standin: HerokuStandIn
) -> None:
    enqueue(delayed_jobs, 25)
    assert harness.decision(harness.tick())["action"] == "scaled"
    assert standin.formation()["worker"] == 10
    delayed_jobs.execute("DELETE FROM delayed_jobs")  # the queue drains ...
    assert kill_daemon_connections(delayed_jobs) == 1  # ... while the connection dies
    line = harness.decision(harness.tick())
    assert line["action"] == "error" and "queue read failed" in line["reason"]
    assert "AdminShutdown" in line["reason"] or "OperationalError" in line["reason"]
    assert (line["current"], line["desired"]) == (10, 10)  # missing data never scales down
    assert standin.formation()["worker"] == 10
    line = harness.decision(harness.tick())  # the next tick reconnects and sees the drain
    assert (line["action"], line["desired"]) == ("scaled", 1)


def test_a_query_over_statement_timeout_is_one_clear_error(
    harness: Harness, delayed_jobs: psycopg.Connection[Any], db_url: str, standin: HerokuStandIn
) -> None:
    enqueue(delayed_jobs, 25)
    harness.tick()
    with psycopg.connect(db_url) as blocker:  # holds an exclusive lock in an open transaction
        blocker.execute("LOCK TABLE delayed_jobs IN ACCESS EXCLUSIVE MODE")
        logs = harness.tick()
        line = harness.decision(logs)
        blocker.rollback()
    assert line["action"] == "error" and "QueryCanceled" in line["reason"]
    assert len([e for e in logs if e["log_level"] == "error"]) == 1  # one line, no traceback
    assert "exc_info" not in line
    assert standin.formation()["worker"] == 10
    assert harness.decision(harness.tick())["action"] == "unchanged"


def test_a_dropped_table_holds_every_tick_until_it_is_back(
    harness: Harness, delayed_jobs: psycopg.Connection[Any], standin: HerokuStandIn
) -> None:
    enqueue(delayed_jobs, 25)
    harness.tick()
    delayed_jobs.execute("DROP TABLE delayed_jobs")
    for _ in range(3):
        line = harness.decision(harness.tick())
        assert line["action"] == "error" and "UndefinedTable" in line["reason"]
    assert [p.body for p in standin.patches()] == [
        {"updates": [{"type": "worker", "quantity": 10}]}
    ]
    fixture = SCHEMAS / "delayed_job.sql"
    delayed_jobs.execute(fixture.read_text())
    assert harness.decision(harness.tick())["desired"] == 1


def test_connection_refused_is_an_error_not_a_crash(
    tmp_path: Path, standin: HerokuStandIn, db_url: str
) -> None:
    refused = conninfo.make_conninfo(db_url, host="127.0.0.1", port="1", password=DB_PASSWORD)
    h = Harness(tmp_path, standin, refused)
    try:
        for _ in range(3):
            line = h.decision(h.tick())
            assert line["action"] == "error" and "queue read failed" in line["reason"]
            assert line["desired"] == line["current"] == 1
        assert standin.patches() == []
    finally:
        h.close()


def test_fallback_dynos_apply_while_the_database_is_unreachable(
    tmp_path: Path, standin: HerokuStandIn, db_url: str
) -> None:
    refused = conninfo.make_conninfo(db_url, host="127.0.0.1", port="1")
    text = CONFIG.replace(
        "scale_down_delay_seconds = 0",
        "fallback_dynos = 3\nread_failures_before_fallback = 2\nscale_down_delay_seconds = 0",
    )
    h = Harness(tmp_path, standin, refused, text)
    try:
        assert h.decision(h.tick())["desired"] == 1
        line = h.decision(h.tick())
        # no copy can hold the lock, but every copy would raise to 3 alike, so it is safe
        assert (line["desired"], line["action"]) == (3, "scaled")
    finally:
        h.close()
    assert standin.formation()["worker"] == 3


def test_heroku_5xx_is_retried_within_the_tick(
    harness: Harness, delayed_jobs: psycopg.Connection[Any], standin: HerokuStandIn
) -> None:
    enqueue(delayed_jobs, 25)
    standin.script(503, {"id": "unavailable", "message": "try later"}, method="PATCH")
    line = harness.decision(harness.tick())
    assert line["action"] == "scaled"
    assert [r.method for r in standin.requests] == ["GET", "PATCH", "PATCH"]


def test_heroku_401_is_logged_and_calls_pause(
    harness: Harness, delayed_jobs: psycopg.Connection[Any], standin: HerokuStandIn
) -> None:
    enqueue(delayed_jobs, 25)
    standin.script(401, {"id": "unauthorized", "message": "Invalid credentials provided."})
    line = harness.decision(harness.tick())
    assert line["action"] == "error" and "401 unauthorized" in line["reason"]
    line = harness.decision(harness.tick())
    assert "paused" in line["reason"]
    assert len(standin.requests) == 1  # not hammered


def test_heroku_429_pauses_writes_and_counts_the_budget(
    harness: Harness, delayed_jobs: psycopg.Connection[Any], standin: HerokuStandIn
) -> None:
    harness.tick()  # formation known
    enqueue(delayed_jobs, 25)
    body = {"id": "rate_limit", "message": "Your account reached the API rate limit"}
    standin.script(429, body, headers={"RateLimit-Remaining": "0"}, times=2, method="PATCH")
    line = harness.decision(harness.tick())
    assert line["action"] == "error" and "429" in line["reason"]
    line = harness.decision(harness.tick())
    assert line["action"] == "held" and "paused" in line["reason"]
    assert [r.method for r in standin.requests].count("PATCH") == 1  # an empty bucket: no retry


def test_a_missing_process_type_names_the_type_and_the_procfile(
    tmp_path: Path,
    standin: HerokuStandIn,
    secret_db_url: str,
    delayed_jobs: psycopg.Connection[Any],
) -> None:
    h = Harness(
        tmp_path, standin, secret_db_url, CONFIG.replace('type = "worker"', 'type = "jobs"')
    )
    try:
        line = h.decision(h.tick())
    finally:
        h.close()
    assert line["action"] == "error"
    assert "'jobs' is not in the app's formation" in line["reason"] and "Procfile" in line["reason"]
    assert standin.patches() == []


def test_a_stated_dyno_limit_is_not_resent_but_clamped(
    harness: Harness, delayed_jobs: psycopg.Connection[Any], standin: HerokuStandIn
) -> None:
    enqueue(delayed_jobs, 25)
    message = "Cannot update to more than 4 Performance-L size dynos per process type."
    standin.script(422, {"id": "invalid_params", "message": message}, method="PATCH")
    assert harness.decision(harness.tick())["action"] == "error"
    line = harness.decision(harness.tick())
    assert line["action"] == "scaled"
    assert [p.body["updates"][0]["quantity"] for p in standin.patches()] == [10, 4]
    assert standin.formation()["worker"] == 4
    line = harness.decision(harness.tick())
    assert line["action"] == "unchanged" and "dyno limit" in line["reason"]
    assert len(standin.patches()) == 2


def test_a_slow_api_times_out_and_holds(
    harness: Harness, delayed_jobs: psycopg.Connection[Any], standin: HerokuStandIn
) -> None:
    enqueue(delayed_jobs, 25)
    standin.script(200, [], delay=1.5, times=2)  # slower than timeout_seconds = 1
    line = harness.decision(harness.tick())
    assert line["action"] == "error" and "Timeout" in line["reason"]
    assert standin.patches() == []


def test_a_manual_change_is_logged_and_the_daemon_continues_from_it(
    harness: Harness, delayed_jobs: psycopg.Connection[Any], standin: HerokuStandIn
) -> None:
    enqueue(delayed_jobs, 25)
    harness.tick()
    standin.set_quantity("worker", 3)  # someone ran heroku ps:scale worker=3
    logs = harness.tick()
    (change,) = [e for e in logs if e["event"] == "external_change"]
    assert (change["process_type"], change["expected"], change["actual"]) == ("worker", 10, 3)
    line = harness.decision(logs)
    assert (line["current"], line["desired"], line["action"]) == (3, 10, "scaled")


def test_only_one_of_two_daemons_writes_and_the_other_takes_over(
    tmp_path: Path,
    standin: HerokuStandIn,
    secret_db_url: str,
    delayed_jobs: psycopg.Connection[Any],
) -> None:
    first = Harness(tmp_path, standin, secret_db_url)
    second = Harness(tmp_path, standin, secret_db_url)
    try:
        enqueue(delayed_jobs, 25)
        assert harness_events(first) == ["leader_elected", "scale_decision"]
        assert harness_events(second) == ["standby"]
        first.close()  # the leader dies: its lock connection closes
        delayed_jobs.execute("DELETE FROM delayed_jobs")
        logs = second.tick()
        assert second.decision(logs)["action"] == "scaled"
    finally:
        second.close()
    assert [p.body["updates"][0]["quantity"] for p in standin.patches()] == [10, 1]


def harness_events(h: Harness) -> list[str]:
    return [e["event"] for e in h.tick()]


def test_the_database_restarting_under_the_daemon(tmp_path: Path, standin: HerokuStandIn) -> None:
    with EmbeddedPostgres() as server:
        url = conninfo.make_conninfo(server.url, password=DB_PASSWORD)
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute((SCHEMAS / "delayed_job.sql").read_text())
            enqueue(conn, 25)
        h = Harness(tmp_path, standin, url)
        try:
            assert h.decision(h.tick())["action"] == "scaled"
            server.stop_server()
            logs = h.tick()
            names = [e["event"] for e in logs]
            assert names in (["standby"], ["leadership_lost", "scale_decision"])
            assert all(e["event"] != "scale_decision" or e["action"] == "error" for e in logs)
            server.start_server()
            events = []
            for _ in range(5):  # reconnects with backoff: a few ticks at most
                logs = h.tick()
                events = [e for e in logs if e["event"] == "scale_decision"]
                if events and events[0]["action"] != "error":
                    break
            assert events and events[0]["action"] == "unchanged"
        finally:
            h.close()
    assert standin.formation()["worker"] == 10
