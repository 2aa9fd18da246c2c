"""What every benchmark needs: a scratch database on a real server, and machine facts."""

from __future__ import annotations

import os
import platform
import secrets
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import psycopg
from psycopg import conninfo

from dynomatic_daemon.sandbox.embedded_pg import EmbeddedPostgres

LOCAL_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextmanager
def server() -> Iterator[str]:
    """A maintenance URL: $BENCH_PG_URL, else the local server on 5432, else an embedded one."""
    url = os.environ.get("BENCH_PG_URL", LOCAL_SERVER)
    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.Error:
        with EmbeddedPostgres() as embedded:
            yield embedded.url
        return
    yield url


@contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """A fresh database for one benchmark run, dropped afterwards."""
    name = f"dynomatic_bench_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield conninfo.make_conninfo(server_url, dbname=name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin, suppress(psycopg.Error):
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def machine(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "python": platform.python_version(),
        "postgres": str(row[0]) if row else "?",
    }
