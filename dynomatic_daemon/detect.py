"""``adapter = "auto"``: find which queue library's tables the database holds.

Each adapter module's ``detect`` looks for its own tables (and version markers) and describes what
it saw. Exactly one match picks the adapter; none or several stop the start with the findings and
how to choose, since guessing wrong would scale on the wrong numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import conninfo

from dynomatic_daemon.adapters import catalog
from dynomatic_daemon.adapters.base import AdapterOptions
from dynomatic_daemon.config import Settings
from dynomatic_daemon.db import Database
from dynomatic_daemon.errors import ConfigError, Problem


def findings(settings: Settings, database_for: Callable[[str], Database]) -> dict[str, str]:
    """Every detectable library whose tables are present, with what was seen."""
    found: dict[str, str] = {}
    for name in catalog.DETECTABLE:
        evidence = database_for(name).run(_prober(name, settings.adapter_options(name)))
        if evidence:
            found[name] = evidence
    return found


def _prober(name: str, options: AdapterOptions) -> Callable[[psycopg.Connection[Any]], str | None]:
    detect = catalog.load(name).detect
    return lambda conn: detect(conn, options)


def resolve_auto(
    settings: Settings, database_for: Callable[[str], Database]
) -> tuple[Settings, dict[str, str]]:
    """Settings with every ``adapter = "auto"`` replaced by the one library found, and what
    was found (empty when nothing was auto)."""
    auto = [i for i, p in enumerate(settings.process) if p.adapter == catalog.AUTO]
    if not auto:
        return settings, {}
    found = findings(settings, database_for)
    if len(found) != 1:
        searched = "" if found else searched_places(settings, database_for)
        problem = explain(found, searched)
        raise ConfigError([Problem(f"process[{i}].adapter", problem) for i in auto])
    (name,) = found
    procs = tuple(
        p.model_copy(update={"adapter": name}) if p.adapter == catalog.AUTO else p
        for p in settings.process
    )
    return settings.model_copy(update={"process": procs}), found


def searched_places(settings: Settings, database_for: Callable[[str], Database]) -> str:
    """Which database (host and name, never the password) and schemas detection looked in."""
    places: dict[str, tuple[str, str, set[str]]] = {}  # env name -> where, current, searched
    for name in catalog.DETECTABLE:
        env_name, url = settings.url_for(name)
        if env_name not in places:
            dbname, current = database_for(name).run(_current_database)
            places[env_name] = (_where(url.get_secret_value(), dbname), current, set())
        _place, current, schemas = places[env_name]
        schemas.add(_schema_searched(name, settings.adapter_options(name)) or current)
    return "; ".join(
        f"database {where} (${env}), schemas {', '.join(sorted(schemas))}"
        for env, (where, _current, schemas) in places.items()
    )


def _schema_searched(name: str, options: AdapterOptions) -> str | None:
    """The schema a library's detection looks in; None: the connection's current schema."""
    if name == "oban":  # Oban's prefix is its schema
        return str(getattr(options, "prefix", "public"))
    if name == "pgmq":  # fixed by the extension
        return "pgmq"
    schema = getattr(options, "schema_name", None)
    return None if schema is None else str(schema)


def _current_database(conn: psycopg.Connection[Any]) -> tuple[str, str]:
    row = conn.execute("SELECT current_database(), current_schema()").fetchone()
    return (str(row[0]), str(row[1])) if row else ("?", "?")


def _where(url: str, dbname: str) -> str:
    params = conninfo.conninfo_to_dict(url)
    host = str(params.get("host") or "local socket")
    port = f":{params['port']}" if params.get("port") else ""
    return f"{dbname} on {host}{port}"


def explain(found: dict[str, str], searched: str = "") -> str:
    if not found:
        return (
            "auto-detection found no known queue tables in "
            f"{searched or 'the database'}; set adapter to one of {', '.join(catalog.NAMES)} "
            "(and its schema/table under [adapters.<name>] if they are elsewhere)"
        )
    seen = "; ".join(f"{name}: {what}" for name, what in sorted(found.items()))
    return (
        f"auto-detection found several queue libraries ({seen}); "
        'set adapter = "<name>" on each [[process]] to choose'
    )
