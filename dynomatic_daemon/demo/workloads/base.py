"""What a simulated queue library provides to ``dynomatic demo``, and the common SQL-only kind."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, LiteralString, Protocol

import psycopg

# (job id, seconds from when the job became runnable to when a worker claimed it; DB clock)
Claimed = tuple[int, float]


class Workload(Protocol):
    """One library's job table. Every call runs on a connection whose search_path is the demo
    schema; ``claim`` and ``finish`` run on the claiming worker's own connection."""

    @property
    def adapter(self) -> str:
        """The daemon adapter that reads this library's tables."""
        ...

    def create(self, conn: psycopg.Connection[Any]) -> None: ...

    def enqueue(self, conn: psycopg.Connection[Any], count: int) -> None: ...

    def claim(self, conn: psycopg.Connection[Any], limit: int, worker: str) -> list[Claimed]: ...

    def finish(self, conn: psycopg.Connection[Any], ids: Sequence[int]) -> None: ...

    def options(self, schema: str) -> dict[str, str]:
        """The ``[adapters.<adapter>]`` table that points the daemon at ``schema``."""
        ...


@dataclass(frozen=True)
class SqlWorkload:
    """A workload given as statements. Parameters: ``%(count)s`` (enqueue), ``%(limit)s`` and
    ``%(worker)s`` (claim), ``%(ids)s`` (finish). ``claim_sql`` returns (id, wait_seconds) rows."""

    adapter: str
    ddl: LiteralString
    enqueue_sql: LiteralString
    claim_sql: LiteralString
    finish_sql: LiteralString
    schema_option: str = "schema"  # the adapter option naming the schema (oban: "prefix")

    def create(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(self.ddl)

    def enqueue(self, conn: psycopg.Connection[Any], count: int) -> None:
        conn.execute(self.enqueue_sql, {"count": count})

    def claim(self, conn: psycopg.Connection[Any], limit: int, worker: str) -> list[Claimed]:
        rows = conn.execute(self.claim_sql, {"limit": limit, "worker": worker}).fetchall()
        return [(int(job_id), max(0.0, float(wait))) for job_id, wait in rows]

    def finish(self, conn: psycopg.Connection[Any], ids: Sequence[int]) -> None:
        conn.execute(self.finish_sql, {"ids": list(ids)})

    def options(self, schema: str) -> dict[str, str]:
        return {self.schema_option: schema}
