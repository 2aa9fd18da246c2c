"""Queue-read connections: read-only, bounded, named, UTC, TLS by default, errors mapped safely."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import conninfo
from pydantic import SecretStr

from dynomatic_daemon.clock import SteppableClock
from dynomatic_daemon.config import DatabaseSettings
from dynomatic_daemon.db import Database, connection_kwargs, redact
from dynomatic_daemon.errors import QueueReadError

PASSWORD = "pw-db-secret-31337"


def settings(url: str, **extra: Any) -> DatabaseSettings:
    return DatabaseSettings(url=SecretStr(url), **extra)


@pytest.mark.parametrize(
    ("url", "sslmode"),
    [
        ("postgres://u:p@ec2-1-2-3-4.compute-1.amazonaws.com:5432/d1", "require"),
        ("postgres://u:p@db.internal/d1?sslmode=verify-full", None),  # the URL's choice stands
        ("postgres://u:p@localhost/d1", None),
        ("postgres://u:p@127.0.0.1:5433/d1", None),
        ("postgresql:///d1?host=/var/run/postgresql", None),
    ],
)
def test_tls_is_required_for_remote_hosts_unless_the_url_says(
    url: str, sslmode: str | None
) -> None:
    assert connection_kwargs(settings(url)).get("sslmode") == sslmode


def test_redact_removes_password_and_url() -> None:
    s = settings(f"postgres://user:{PASSWORD}@db.example.com/app")
    text = redact(f"failed for postgres://user:{PASSWORD}@db.example.com/app ({PASSWORD})", s)
    assert PASSWORD not in text


@pytest.mark.postgres
def test_connection_is_read_only_bounded_named_and_utc(
    db_url: str, pg_conn: psycopg.Connection[Any]
) -> None:
    db = Database(settings(db_url, statement_timeout_ms=1234), SteppableClock())

    def facts(conn: psycopg.Connection[Any]) -> tuple[Any, ...]:
        row = conn.execute(
            "SELECT current_setting('default_transaction_read_only'),"
            " current_setting('statement_timeout'), current_setting('TimeZone'),"
            " current_setting('application_name')"
        ).fetchone()
        assert row is not None
        return tuple(row)

    assert db.run(facts) == ("on", "1234ms", "UTC", "dynomatic")
    pg_conn.execute("CREATE TABLE t (x int)")
    with pytest.raises(QueueReadError, match="ReadOnlySqlTransaction"):
        db.run(lambda conn: conn.execute("INSERT INTO t VALUES (1)"))
    with pytest.raises(QueueReadError, match="QueryCanceled"):
        db.run(lambda conn: conn.execute("SELECT pg_sleep(5)"))
    assert db.run(facts)[0] == "on"  # reconnected after the failures
    db.close()


@pytest.mark.postgres
def test_refused_connection_is_mapped_without_the_password_and_backs_off(db_url: str) -> None:
    params = conninfo.conninfo_to_dict(db_url)
    bad = conninfo.make_conninfo(db_url, port="1", password=PASSWORD, host=str(params["host"]))
    clock = SteppableClock()
    db = Database(settings(bad, connect_timeout_seconds=2), clock)
    with pytest.raises(QueueReadError) as first:
        db.run(lambda conn: 1)
    assert PASSWORD not in str(first.value)
    assert "OperationalError" in str(first.value)
    with pytest.raises(QueueReadError):
        db.run(lambda conn: 1)  # the second failure sets a pause before the next attempt
    with pytest.raises(QueueReadError, match="next connection attempt in"):
        db.run(lambda conn: 1)
    clock.advance(61)
    with pytest.raises(QueueReadError, match="OperationalError"):
        db.run(lambda conn: 1)
