"""adapter = "auto": each library's tables alone are recognised; none or several stop the start."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr

from dynomatic_daemon import config, detect
from dynomatic_daemon.adapters import catalog
from dynomatic_daemon.clock import SteppableClock
from dynomatic_daemon.db import Database
from dynomatic_daemon.errors import ConfigError

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


def install(conn: psycopg.Connection[Any], name: str) -> None:
    """The library's schema, as its benchmark data module builds it (its installer or fixture)."""
    importlib.import_module(f"benchmarks.adapters.data_{name}").create_schema(conn)


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
