"""Fixtures shared by the whole test suite.

Environment
    ``scrub_env`` (autouse): removes ``HEROKU_API_KEY``, ``DATABASE_URL``, ``HEROKU_APP_NAME``
    and every ``DYNOMATIC_*`` variable from ``os.environ`` for each test, so the developer's
    environment never leaks into a test (or into the subprocesses a test spawns).

PostgreSQL (tests that use these mark themselves ``@pytest.mark.postgres``)
    ``pg_server_url`` (session): URL of a server we may create databases on, as a superuser.
        With ``DYNOMATIC_TEST_EMBEDDED=1`` it is always an embedded server. Otherwise it is
        ``postgresql://postgres@127.0.0.1:5432/postgres`` (or the URL in
        ``DYNOMATIC_TEST_PG_URL``) when that answers within 2 s, and else an embedded server
        (``dynomatic_daemon.sandbox.embedded_pg``), stopped and deleted when the run ends.
        The terminal summary says which one was used. Both variables are read once, at start.
    ``pg_url`` (session): URL of a fresh database ``dynomatic_test_<hex>`` (UTF8, C collation)
        created on that server for the whole run and dropped ``WITH (FORCE)`` at its end.
    ``pg_conn`` (function): an autocommit ``psycopg.Connection`` to ``pg_url``. After the test
        the database is made clean again: other backends connected to it are terminated
        (so session advisory locks cannot leak into the next test), every non-system schema
        is dropped (table by table first, when one transaction cannot lock them all),
        ``public`` is recreated as on a new database, and database-level settings are reset
        (``ALTER DATABASE ... RESET ALL``).
    ``db_url`` (function): ``pg_url`` as a string, for tests that spawn subprocesses; it
        depends on ``pg_conn``, so the database is cleaned after the test the same way.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import TupleRow

from dynomatic_daemon.sandbox.embedded_pg import EmbeddedPostgres

SCRUBBED_VARIABLES = frozenset({"HEROKU_API_KEY", "DATABASE_URL", "HEROKU_APP_NAME"})

# Read at import time: scrub_env removes DYNOMATIC_* before any test body could look.
FORCE_EMBEDDED = os.environ.get("DYNOMATIC_TEST_EMBEDDED") == "1"
SYSTEM_PG_URL = os.environ.get(
    "DYNOMATIC_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
SERVER_NOTE = pytest.StashKey[str]()

TERMINATE_OTHER_BACKENDS = """
    SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid()
"""
USER_SCHEMAS = r"""
    SELECT nspname FROM pg_namespace
    WHERE nspname NOT IN ('pg_catalog', 'information_schema')
      AND nspname NOT LIKE 'pg\_toast%' AND nspname NOT LIKE 'pg\_temp%'
"""

TABLES_LEAVES_FIRST = """
    SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = %s AND c.relkind IN ('r', 'p')
    ORDER BY c.relkind = 'p', c.relispartition DESC
"""


@pytest.fixture(autouse=True)
def scrub_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name in SCRUBBED_VARIABLES or name.startswith("DYNOMATIC_"):
            monkeypatch.delenv(name)


def pytest_report_header(config: pytest.Config) -> str:
    if FORCE_EMBEDDED:
        return "postgres: embedded server (DYNOMATIC_TEST_EMBEDDED=1)"
    return f"postgres: {describe(SYSTEM_PG_URL)} if it answers, else an embedded server"


@pytest.hookimpl(tryfirst=True)
def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    if note := config.stash.get(SERVER_NOTE, None):
        terminalreporter.write_line(note)


def describe(url: str) -> str:
    """host:port/dbname of a URL, without any password."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 5432}{parts.path}"


def with_dbname(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise pytest.UsageError(f"DYNOMATIC_TEST_PG_URL must be a postgresql:// URL, not {url!r}")
    return urlunsplit(parts._replace(path=f"/{dbname}"))


def unreachable(url: str) -> str | None:
    """Why ``url`` cannot be used right now, or None if it can."""
    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return None


@pytest.fixture(scope="session")
def pg_server_url(pytestconfig: pytest.Config) -> Iterator[str]:
    reason = "DYNOMATIC_TEST_EMBEDDED=1" if FORCE_EMBEDDED else unreachable(SYSTEM_PG_URL)
    if reason is None:
        pytestconfig.stash[SERVER_NOTE] = f"PostgreSQL for tests: {describe(SYSTEM_PG_URL)}"
        yield SYSTEM_PG_URL
        return
    with EmbeddedPostgres() as server:
        pytestconfig.stash[SERVER_NOTE] = (
            f"PostgreSQL for tests: embedded at {describe(server.url)} ({reason})"
        )
        yield server.url


@pytest.fixture(scope="session")
def pg_url(pg_server_url: str) -> Iterator[str]:
    dbname = f"dynomatic_test_{secrets.token_hex(6)}"
    name = sql.Identifier(dbname)
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        # template0 with explicit C collation: the same behaviour on any server.
        conn.execute(
            sql.SQL(
                "CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
            ).format(name)
        )
    yield with_dbname(pg_server_url, dbname)
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))


def drop_schema(conn: psycopg.Connection[TupleRow], schema: str) -> None:
    statement = sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema))
    try:
        conn.execute(statement)
    except psycopg.errors.OutOfMemory:
        # One transaction takes a lock per object it drops, and the lock table holds
        # max_locks_per_transaction x max_connections (6,400 by default): hundreds of queue
        # partitions with their indexes (pg-boss v10) exceed it. So one table per transaction,
        # leaf tables first (dropping a partitioned table drops its partitions with it).
        for (table,) in conn.execute(TABLES_LEAVES_FIRST, [schema]).fetchall():
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.SQL(table)))
        conn.execute(statement)


def reset_database(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        # First, so no leftover session still holds locks on what we drop next.
        conn.execute(TERMINATE_OTHER_BACKENDS)
        for (schema,) in conn.execute(USER_SCHEMAS).fetchall():
            drop_schema(conn, schema)
        # As a new database has it since PostgreSQL 15.
        conn.execute("CREATE SCHEMA public AUTHORIZATION pg_database_owner")
        conn.execute("GRANT USAGE ON SCHEMA public TO PUBLIC")
        dbname = sql.Identifier(conn.info.dbname)
        conn.execute(sql.SQL("ALTER DATABASE {} RESET ALL").format(dbname))


@pytest.fixture
def pg_conn(pg_url: str) -> Iterator[psycopg.Connection[TupleRow]]:
    conn = psycopg.connect(pg_url, autocommit=True)
    try:
        yield conn
    finally:
        # A fresh connection cleans up: the test may have left this one in any state.
        conn.close()
        reset_database(pg_url)


@pytest.fixture
def db_url(pg_url: str, pg_conn: psycopg.Connection[TupleRow]) -> str:
    # pg_conn is requested only for its cleanup after the test.
    return pg_url
