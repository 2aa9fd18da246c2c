"""The command line of history: ``dynomatic history [init]`` and ``dynomatic report``.

Each command is an ``add_*_arguments`` function for its options and a ``cmd_*`` handler, which
``cli.COMMANDS`` names; the global ``--config`` and ``--log-format`` come from ``cli``.
"""

from __future__ import annotations

import argparse
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from dynomatic_daemon.config import Settings
from dynomatic_daemon.errors import ConfigError, Problem
from dynomatic_daemon.history import report, terminal
from dynomatic_daemon.history.queries import Window, read_window
from dynomatic_daemon.store import connection, migrations

READ_TIMEOUT_MS = 30_000
MAX_SPAN = timedelta(days=400)
_SPAN = re.compile(r"^(\d+(?:\.\d+)?)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def span(text: str) -> timedelta:
    """``30m``, ``24h``, ``7d``, ``2w``: how far back to look."""
    match = _SPAN.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a span like 30m, 24h, 7d or 2w")
    value = timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    if not timedelta(0) < value <= MAX_SPAN:
        raise argparse.ArgumentTypeError(f"{text!r}: give a span between 1m and 400d")
    return value


def add_history_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--since", type=span, default=span("24h"), help="how far back (default 24h)")
    cmd.add_argument("--type", help="one process type only")
    cmd.add_argument("--json", action="store_true", help="print the rows as one JSON document")
    init = cmd.add_subparsers(dest="history_command").add_parser(
        "init", help="create or upgrade the history schema, or print its SQL for a DBA"
    )
    init.add_argument(  # `history --config X init` keeps X: SUPPRESS leaves it alone
        "--config",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="the TOML config file (default: $DYNOMATIC_CONFIG, else ./dynomatic.toml)",
    )
    init.add_argument(
        "--print-sql", action="store_true", help="print the SQL and grants; no connection"
    )
    init.add_argument("--role", default="dynomatic", help="the role --print-sql grants to")


def add_report_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--since", type=span, default=span("7d"), help="how far back (default 7d)")
    cmd.add_argument("--type", help="one process type only")
    cmd.add_argument(
        "-o", "--output", type=Path, default=Path("report.html"), help="the file to write"
    )


def _connect(settings: Settings, app_name: str) -> psycopg.Connection[Any]:
    url = settings.history.url
    if url is None:
        raise ConfigError(
            [Problem(settings.history.url_env, "not set; history reads its URL there")]
        )
    return connection.connect(
        url,
        statement_timeout_ms=READ_TIMEOUT_MS,
        connect_timeout_seconds=settings.history.connect_timeout_seconds,
        application_name=app_name,
    )


def load_window(settings: Settings, since: timedelta, process_type: str | None) -> Window | None:
    schema = settings.history.schema_name
    until = datetime.now(UTC)
    with _connect(settings, "dynomatic-report") as conn:
        if migrations.current_version(conn, schema) < 1:
            return None
        return read_window(
            conn,
            schema,
            settings.heroku.app,
            since=until - since,
            until=until,
            process_type=process_type,
        )


def _no_history(settings: Settings) -> int:
    print(
        f"dynomatic: no history schema {settings.history.schema_name!r} in that database; "
        "set [history] enabled = true (or run `dynomatic history init`)",
    )
    return 1


def cmd_history(settings: Settings, args: argparse.Namespace) -> int:
    if getattr(args, "history_command", None) == "init":
        return cmd_history_init(settings, args)
    window = load_window(settings, args.since, args.type)
    if window is None:
        return _no_history(settings)
    if args.json:
        print(json.dumps(terminal.as_json(window), indent=2))
    else:
        print("\n".join(terminal.lines(window)))
    return 0


def cmd_history_init(settings: Settings, args: argparse.Namespace) -> int:
    schema = settings.history.schema_name
    if args.print_sql:
        print("-- dynomatic history schema, as the database owner (psql -1 -f):")
        print(migrations.script(schema))
        print("\n-- then, for a role that only records and reads history:")
        print(migrations.grants(schema, args.role))
        return 0
    with _connect(settings, "dynomatic-init") as conn:
        applied = migrations.migrate(conn, schema)
    done = ", ".join(map(str, applied)) or "none, already up to date"
    print(f"history schema {schema!r} at version {migrations.LATEST} (applied: {done})")
    return 0


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    window = load_window(settings, args.since, args.type)
    if window is None:
        return _no_history(settings)
    page = report.render(
        window, title=f"dynomatic report: {settings.heroku.app}", overrides=settings.budget.prices
    )
    args.output.write_text(page, encoding="utf-8")
    size = f"{len(page) / 1024:.0f} KB"
    print(f"wrote {args.output} ({size}): {len(window.samples)} rows, {len(window.events)} events")
    return 0
