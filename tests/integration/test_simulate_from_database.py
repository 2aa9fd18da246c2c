"""``dynomatic simulate --from-database`` on a real PostgreSQL: one case per library that keeps
finished jobs, written as that library writes them (schema files in sandbox/schemas, or
procrastinate's own schema and queries)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from procrastinate.schema import SchemaManager
from procrastinate.sql import queries

from dynomatic_daemon import cli
from dynomatic_daemon.adapters import catalog
from dynomatic_daemon.sandbox.schemas import SCHEMAS
from dynomatic_daemon.simulate.from_database import SUPPORTED, read_trace

pytestmark = pytest.mark.postgres
DAY = 86_400.0
Conn = psycopg.Connection[Any]
# (queue, became ready, started, finished): seconds ago; None = not yet
JOBS = [
    ("default", 3600, 3590, 3560),  # waited 10 s, ran 30 s
    ("mail", 600, 600, 595),  # ran 5 s at once
    ("default", 2 * DAY, 2 * DAY - 5, 2 * DAY - 10),  # before the window
    ("default", 30, 10, None),  # still running
    ("default", 20, None, None),  # still waiting
]
EXPECTED = [(DAY - 3600, 30.0, "default"), (DAY - 600, 5.0, "mail")]


def ago(seconds: float | None) -> str:
    return "NULL" if seconds is None else f"now() - make_interval(secs => {seconds})"


def utc_ago(seconds: float | None) -> str:
    return "NULL" if seconds is None else f"timezone('UTC', {ago(seconds)})"


def good_job(conn: Conn) -> None:
    conn.execute((SCHEMAS / "good_job.sql").read_text())
    for queue, ready, started, finished in JOBS:
        conn.execute(
            "INSERT INTO good_jobs (queue_name, scheduled_at, created_at, updated_at,"
            f" performed_at, finished_at) VALUES (%s, {utc_ago(ready)}, {utc_ago(ready)},"
            f" {utc_ago(0)}, {utc_ago(started)}, {utc_ago(finished)})",
            [queue],
        )


def river(conn: Conn) -> None:
    conn.execute((SCHEMAS / "river_7.sql").read_text())
    for queue, ready, started, finished in JOBS:
        state = "completed" if finished else "running" if started else "available"
        conn.execute(
            "INSERT INTO river_job (state, attempt, attempted_at, scheduled_at, finalized_at,"
            f" args, kind, queue) VALUES (%s, 1, {ago(started)}, {ago(ready)}, {ago(finished)},"
            " '{}', 'k', %s)",
            [state, queue],
        )


def oban(conn: Conn) -> None:
    conn.execute((SCHEMAS / "oban_14.sql").read_text())
    for queue, ready, started, finished in JOBS:
        state = "completed" if finished else "executing" if started else "available"
        conn.execute(
            "INSERT INTO oban_jobs (state, queue, worker, attempt, inserted_at, scheduled_at,"
            f" attempted_at, completed_at) VALUES (%s, %s, 'W', 1, {utc_ago(ready)},"
            f" {utc_ago(ready)}, {utc_ago(started)}, {utc_ago(finished)})",
            [state, queue],
        )


def procrastinate(conn: Conn) -> None:
    conn.execute(SchemaManager.get_schema())
    worker = conn.execute(queries["register_worker"]).fetchone()
    assert worker is not None
    for queue, ready, started, finished in JOBS:
        row = conn.execute(
            "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW(%s, 't', 0, NULL, NULL, '{}', NULL)"
            "::procrastinate_job_to_defer_v1])",
            [queue],
        ).fetchone()
        assert row is not None
        job = row[0][0] if isinstance(row[0], list) else row[0]
        if started is not None:
            conn.execute("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %s", [job])
        if finished is not None:
            conn.execute(
                queries["finish_job"], {"job_id": job, "status": "succeeded", "delete_job": False}
            )
        conn.execute(  # one statement, so one now(): the durations come out exact
            "UPDATE procrastinate_events SET at = CASE type"
            f" WHEN 'deferred' THEN {ago(ready)} WHEN 'started' THEN {ago(started)}"
            f" ELSE {ago(finished)} END WHERE job_id = %s",
            [job],
        )


def pgboss(conn: Conn) -> None:
    conn.execute((SCHEMAS / "pgboss_12.sql").read_text())
    for name in ("default", "mail"):
        conn.execute(
            "INSERT INTO pgboss.queue (name, policy, retry_limit, retry_delay, retry_backoff,"
            " expire_seconds, retention_seconds, deletion_seconds, partition, table_name)"
            " VALUES (%s, 'standard', 2, 0, false, 900, 1209600, 604800, false, 'job_common')",
            [name],
        )
    for queue, ready, started, finished in JOBS:
        state = "completed" if finished else "active" if started else "created"
        conn.execute(
            "INSERT INTO pgboss.job (name, state, start_after, created_on, started_on,"
            f" completed_on) VALUES (%s, %s::pgboss.job_state, {ago(ready)}, {ago(ready)},"
            f" {ago(started)}, {ago(finished)})",
            [queue, state],
        )


def pgboss_9(conn: Conn) -> None:
    """The v9 layout: run-together column names, and finished jobs moved to ``archive``."""
    conn.execute((SCHEMAS / "pgboss_9.sql").read_text())
    for queue, ready, started, finished in JOBS:
        state = "completed" if finished else "active" if started else "created"
        conn.execute(
            "INSERT INTO pgboss.job (name, state, startafter, createdon, startedon, completedon)"
            f" VALUES (%s, %s::pgboss.job_state, {ago(ready)}, {ago(ready)}, {ago(started)},"
            f" {ago(finished)})",
            [queue, state],
        )
    conn.execute(  # as pg-boss archives a finished job: the row moves, archivedon is added
        "WITH moved AS (DELETE FROM pgboss.job WHERE name = 'mail' RETURNING *)"
        " INSERT INTO pgboss.archive SELECT * FROM moved"
    )


def chancy(conn: Conn) -> None:
    conn.execute((SCHEMAS / "chancy.sql").read_text())
    for queue, ready, started, finished in JOBS:
        state = "succeeded" if finished else "running" if started else "pending"
        conn.execute(
            "INSERT INTO chancy_jobs (id, queue, func, state, created_at, scheduled_at,"
            f" started_at, completed_at) VALUES (gen_random_uuid(), %s, 'f', %s, {ago(ready)},"
            f" {ago(ready)}, {ago(started)}, {ago(finished)})",
            [queue, state],
        )


LIBRARIES: dict[str, tuple[str, Callable[[Conn], None]]] = {
    "good_job": ("good_job", good_job),
    "river": ("river", river),
    "oban": ("oban", oban),
    "procrastinate": ("procrastinate", procrastinate),
    "pgboss": ("pgboss", pgboss),
    "pgboss v9": ("pgboss", pgboss_9),
    "chancy": ("chancy", chancy),
}


def test_every_supported_library_has_a_case() -> None:
    assert sorted({name for name, _ in LIBRARIES.values()}) == sorted(SUPPORTED)


@pytest.mark.parametrize("case", list(LIBRARIES))
def test_finished_jobs_of_the_window_become_the_trace(pg_conn: Conn, case: str) -> None:
    name, write = LIBRARIES[case]
    write(pg_conn)
    options = catalog.options_model(name).model_validate({})
    pg_conn.execute("SET TIME ZONE 'Pacific/Auckland'")  # naive-UTC columns must not care
    trace = read_trace(pg_conn, [(name, options)], DAY)
    got = sorted(zip(trace.arrivals, trace.services, trace.queues, strict=True))
    assert len(got) == len(EXPECTED), got
    for (arrival, service, queue), (want_a, want_s, want_q) in zip(got, EXPECTED, strict=True):
        assert arrival == pytest.approx(want_a, abs=1.0)
        assert service == pytest.approx(want_s, abs=0.01)
        assert queue == want_q
    assert trace.duration == pytest.approx(DAY)


CONFIG = """
[heroku]
app = "my-app"
[[process]]
type = "worker"
adapter = "{adapter}"
jobs_per_dyno = 25
max_dynos = 3
"""


def simulate(tmp_path: Path, adapter: str, *extra: str) -> list[str]:
    path = tmp_path / "dynomatic.toml"
    path.write_text(CONFIG.format(adapter=adapter))
    return ["simulate", "--config", str(path), "--from-database", "--references", "none", *extra]


def test_the_command_replays_the_database_and_finds_the_library(
    pg_conn: Conn, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    river(pg_conn)
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert cli.main(simulate(tmp_path, "auto", "--since", "2h", "--json")) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["trace"]["jobs"] == 2 and doc["trace"]["duration_seconds"] == pytest.approx(7200)
    assert doc["results"][0]["metrics"]["jobs"] == 2


def test_a_library_that_deletes_finished_jobs_is_refused_by_name(
    delayed_jobs: Conn, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert cli.main(simulate(tmp_path, "delayed_job")) == 2
    err = capsys.readouterr().err
    assert "process[0].adapter: delayed_job keeps no finished jobs" in err
    assert "--trace" in err


def test_without_the_url_or_the_database_it_says_why_and_never_shows_a_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    assert cli.main(simulate(tmp_path, "river")) == 2
    assert "DATABASE_URL: not set" in capsys.readouterr().err
    monkeypatch.setenv("DATABASE_URL", "postgresql://someone:hunter2secret@127.0.0.1:1/nowhere")
    assert cli.main(simulate(tmp_path, "river")) == 1
    err = capsys.readouterr().err
    assert "cannot rebuild the trace from the database" in err
    assert "hunter2secret" not in err
