"""What the demo stands up around the daemon: a database, the demo schema, and the config.

Each ``start_*``/``create_*`` registers its own undo on the given ExitStack as soon as the thing
exists, so a failure or a signal half-way through setup still removes what was made.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Protocol

import psycopg
from psycopg import sql

from dynomatic_daemon.demo.workloads import Workload
from dynomatic_daemon.sandbox.embedded_pg import EmbeddedPostgres

DEMO_API_KEY = "demo-api-key-not-a-real-token"
MAX_DYNOS = 10
JOBS_PER_DYNO = 5
LATENCY_SECONDS, LATENCY_DYNOS = 3, 3

CONFIG = """\
[heroku]
app = {app}

[daemon]
interval_seconds = {interval}
log_format = "logfmt"

[adapters.{adapter}]
{options}

[[process]]
type = "worker"
adapter = "{adapter}"
jobs_per_dyno = {jobs_per_dyno}
latency_rules = [ {{ at_least_seconds = {latency_seconds}, dynos = {latency_dynos} }} ]
min_dynos = 0
max_dynos = {max_dynos}
scale_down_delay_seconds = {delay}
worker_concurrency = 1
"""

Connect = Callable[[], psycopg.Connection[Any]]


class Note(Protocol):
    def __call__(self, event: str, text: str, **fields: Any) -> None: ...


def start_database(stack: ExitStack, note: Note) -> str:
    note("demo_database", "Starting an embedded PostgreSQL...", status="starting")
    server = stack.enter_context(EmbeddedPostgres())
    note(
        "demo_database",
        f"Embedded PostgreSQL on 127.0.0.1:{server.port}, data in {server.root}",
        embedded=True,
        pid=server.pid,
        dir=str(server.root),
    )
    return server.url


def create_schema(stack: ExitStack, url: str, workload: Workload, note: Note) -> str:
    """A schema of the demo's own, holding the workload's tables; dropped when ``stack`` closes."""
    schema = f"dynomatic_demo_{secrets.token_hex(4)}"
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    stack.callback(_drop_schema, url, schema, note)
    with connector(url, schema)() as conn:
        workload.create(conn)
    note("demo_schema", f"Created the {workload.adapter} tables in schema {schema}",
         schema=schema, adapter=workload.adapter)  # fmt: skip
    return schema


def _drop_schema(url: str, schema: str, note: Note) -> None:
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    except psycopg.Error as exc:
        note("demo_cleanup_failed", f"Could not drop schema {schema}: {exc}",
             schema=schema, error=str(exc))  # fmt: skip


def connector(url: str, schema: str) -> Connect:
    """Connections for the simulated app: everything unqualified lands in the demo schema."""

    def connect() -> psycopg.Connection[Any]:
        return psycopg.connect(
            url,
            autocommit=True,
            connect_timeout=10,
            application_name="dynomatic-demo-app",
            options=f"-c search_path={schema} -c statement_timeout=5000",
        )

    return connect


def write_config(
    path: Path, *, app: str, interval: float, workload: Workload, schema: str, delay: float
) -> Path:
    options = "\n".join(f"{k} = {json.dumps(v)}" for k, v in workload.options(schema).items())
    text = CONFIG.format(
        app=json.dumps(app),
        interval=interval,
        adapter=workload.adapter,
        options=options,
        jobs_per_dyno=JOBS_PER_DYNO,
        latency_seconds=LATENCY_SECONDS,
        latency_dynos=LATENCY_DYNOS,
        max_dynos=MAX_DYNOS,
        delay=delay,
    )
    path.write_text(text, encoding="utf-8")
    return path


def policy_text(delay: float) -> str:
    """The demo's rules in words (what the config above says in keys)."""
    return (
        f"a dyno per {JOBS_PER_DYNO} waiting jobs, {LATENCY_DYNOS} once a job has waited "
        f"{LATENCY_SECONDS} s, between 0 and {MAX_DYNOS}; fewer only after {delay:g} s of less work"
    )
