"""adapter = "auto": each library's tables alone are recognised; none or several stop the start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr

from dynomatic_daemon import config, detect
from dynomatic_daemon.adapters import catalog
from dynomatic_daemon.clock import SteppableClock
from dynomatic_daemon.db import Database
from dynomatic_daemon.demo.workloads import WORKLOADS
from dynomatic_daemon.errors import ConfigError
from dynomatic_daemon.sandbox.schemas import schema_sql

pytestmark = pytest.mark.postgres

CONFIG = """
[heroku]
app = "my-app"
[[process]]
type = "worker"
rules = [ { at_least = 0, dynos = 1 } ]
[[process]]
type = "mailer"
adapter = "delayed_job"
queues = ["mailers"]
rules = [ { at_least = 0, dynos = 1 } ]
"""


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> config.Settings:
    path = tmp_path / "dynomatic.toml"
    path.write_text(CONFIG)
    return config.load(path, {"HEROKU_API_KEY": "k" * 20, "DATABASE_URL": db_url})


@pytest.fixture
def database(db_url: str) -> Any:
    db = Database(config.DatabaseSettings(url=SecretStr(db_url)), SteppableClock())
    yield lambda _name: db
    db.close()


# Libraries whose migration makes a schema of its own, where detection looks by default; the demo
# puts their tables in its scratch schema instead.
OWN_SCHEMA = {"pgboss": "pgboss_12.sql", "graphile_worker": "graphile_worker_0_17.sql"}


def install(conn: psycopg.Connection[Any], name: str) -> None:
    """The library's tables, as its own migration makes them (the demo's workload, which does
    the same, unless the library keeps a schema of its own)."""
    if name in OWN_SCHEMA:
        conn.execute(schema_sql(OWN_SCHEMA[name]))  # type: ignore[call-overload]
    else:
        WORKLOADS[name].create(conn)


@pytest.mark.parametrize("name", catalog.DETECTABLE)
def test_each_library_alone_is_detected(
    name: str, pg_conn: psycopg.Connection[Any], settings: config.Settings, database: Any
) -> None:
    install(pg_conn, name)
    found = detect.findings(settings, database)
    assert list(found) == [name], found
    resolved, seen = detect.resolve_auto(settings, database)
    assert [p.adapter for p in resolved.process] == [name, "delayed_job"]  # explicit ones stay
    assert seen == found


def test_two_libraries_are_an_ambiguity_that_names_both(
    pg_conn: psycopg.Connection[Any], settings: config.Settings, database: Any
) -> None:
    install(pg_conn, "delayed_job")
    install(pg_conn, "river")
    with pytest.raises(ConfigError) as info:
        detect.resolve_auto(settings, database)
    (problem,) = info.value.problems
    assert problem.key == "process[0].adapter"
    assert "several queue libraries" in problem.message
    assert "delayed_job:" in problem.message and "river:" in problem.message
    assert 'set adapter = "<name>"' in problem.message


def test_an_empty_database_says_nothing_was_found_and_how_to_choose(
    settings: config.Settings, database: Any
) -> None:
    with pytest.raises(ConfigError) as info:
        detect.resolve_auto(settings, database)
    message = info.value.problems[0].message
    assert "found no known queue tables" in message
    assert "delayed_job, good_job, que" in message
