"""Numbered, idempotent migrations of the store's schema, recorded in ``schema_migrations``.

Append to ``MIGRATIONS``; never edit a released one. Each statement is safe to run twice (``IF NOT
EXISTS``), and ``migrate`` applies the missing ones in order, in one transaction, under an
advisory lock, so two daemons starting at once cannot race. ``script`` is the same work as text
for a DBA, and ``grants`` what a least-privilege role needs to use the store afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, LiteralString

import psycopg
from psycopg import sql


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[LiteralString, ...]  # {schema} stands for the schema's identifier


VERSION_TABLE: LiteralString = """
CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "history: one row per process type per minute, and events",
        (
            # The key leads with (app, minute) so a window read and the retention prune are
            # index range scans whatever the table's size.
            """CREATE TABLE IF NOT EXISTS {schema}.samples (
                app text NOT NULL,
                minute timestamptz NOT NULL,
                process_type text NOT NULL,
                ticks smallint NOT NULL,
                ready_max integer,
                ready_capped boolean NOT NULL DEFAULT false,
                latency_max real,
                running_max integer,
                dynos_max smallint,
                desired_max smallint,
                dyno_seconds real NOT NULL DEFAULT 0,
                errors smallint NOT NULL DEFAULT 0,
                size text,
                PRIMARY KEY (app, minute, process_type)
            )""",
            """CREATE TABLE IF NOT EXISTS {schema}.events (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                app text NOT NULL,
                at timestamptz NOT NULL,
                process_type text,
                kind text NOT NULL,
                current_dynos integer,
                desired_dynos integer,
                reason text NOT NULL DEFAULT '',
                fields jsonb NOT NULL DEFAULT '{{}}'
            )""",
            "CREATE INDEX IF NOT EXISTS events_app_at ON {schema}.events (app, at)",
        ),
    ),
    Migration(
        2,
        "state: guardrails (pauses, manual overrides, release holds) and spend per day",
        (
            # One row per guardrail in force; process_type '*' covers every type. ``until`` is
            # on the database clock, so a pause given from any machine expires on time.
            """CREATE TABLE IF NOT EXISTS {schema}.guardrails (
                app text NOT NULL,
                kind text NOT NULL,
                process_type text NOT NULL,
                since timestamptz NOT NULL DEFAULT now(),
                until timestamptz NOT NULL,
                quantity integer,
                reason text NOT NULL DEFAULT '',
                created_by text NOT NULL DEFAULT '',
                PRIMARY KEY (app, kind, process_type)
            )""",
            """CREATE TABLE IF NOT EXISTS {schema}.spend (
                app text NOT NULL,
                process_type text NOT NULL,
                day date NOT NULL,
                dyno_seconds double precision NOT NULL DEFAULT 0,
                usd double precision NOT NULL DEFAULT 0,
                PRIMARY KEY (app, process_type, day)
            )""",
        ),
    ),
)
LATEST = MIGRATIONS[-1].version
LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext(%s))"


def _statement(text: LiteralString, schema: str) -> sql.Composed:
    return sql.SQL(text).format(schema=sql.Identifier(schema))


def current_version(conn: psycopg.Connection[Any], schema: str) -> int:
    """The highest version applied, 0 for none (no schema, no table)."""
    row = conn.execute(
        "SELECT to_regclass(format('%%I.schema_migrations', %s::text)) IS NOT NULL", (schema,)
    ).fetchone()
    if not row or not row[0]:
        return 0
    query = _statement("SELECT coalesce(max(version), 0) FROM {schema}.schema_migrations", schema)
    found = conn.execute(query).fetchone()
    return int(found[0]) if found else 0


def migrate(conn: psycopg.Connection[Any], schema: str) -> list[int]:
    """Apply what is missing; return the versions applied now (empty when up to date)."""
    applied: list[int] = []
    with conn.transaction():
        conn.execute(LOCK_SQL, (f"dynomatic-migrate:{schema}",))
        conn.execute(_statement("CREATE SCHEMA IF NOT EXISTS {schema}", schema))
        conn.execute(_statement(VERSION_TABLE, schema))
        done = current_version(conn, schema)
        for migration in MIGRATIONS:
            if migration.version <= done:
                continue
            for statement in migration.statements:
                conn.execute(_statement(statement, schema))
            insert = "INSERT INTO {schema}.schema_migrations (version, name) VALUES (%s, %s)"
            conn.execute(_statement(insert, schema), (migration.version, migration.name))
            applied.append(migration.version)
    return applied


def script(schema: str) -> str:
    """Every migration as SQL text a DBA can read and run (``psql -1 -f``)."""
    lines = [_plain("CREATE SCHEMA IF NOT EXISTS {schema}", schema) + ";"]
    lines.append(_plain(VERSION_TABLE, schema).strip() + ";")
    for migration in MIGRATIONS:
        lines.append(f"-- {migration.version}: {migration.name}")
        lines += [_plain(s, schema).strip() + ";" for s in migration.statements]
        name = migration.name.replace("'", "''")
        lines.append(
            f"INSERT INTO {_quoted(schema)}.schema_migrations (version, name) "
            f"VALUES ({migration.version}, '{name}') ON CONFLICT DO NOTHING;"
        )
    return "\n".join(lines)


def grants(schema: str, role: str) -> str:
    """What a role that only records and reads history needs, once the schema exists."""
    s, r = _quoted(schema), _quoted(role)
    return "\n".join(
        [
            f"GRANT USAGE ON SCHEMA {s} TO {r};",
            f"GRANT SELECT ON {s}.schema_migrations TO {r};",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON {s}.samples, {s}.events, "
            f"{s}.guardrails, {s}.spend TO {r};",
            f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {s} TO {r};",
        ]
    )


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _plain(statement: str, schema: str) -> str:
    return statement.replace("{schema}", _quoted(schema)).replace("{{", "{").replace("}}", "}")
