"""What every adapter module provides, and the option model they all share.

An adapter module ``dynomatic_daemon/adapters/<name>.py`` exports:

- ``Options``: a subclass of ``AdapterOptions`` (validated from ``[adapters.<name>]``);
- ``Reader``: ``Reader(options)`` with ``name`` and ``read(conn, selectors, cap) -> QueueReading``;
- ``detect(conn, options) -> str | None``: for ``adapter = "auto"``, a short description of the
  library's tables when they are present (``"table public.delayed_jobs"``), else None.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol

import psycopg
from psycopg import sql
from psycopg.abc import AdaptContext, Buffer
from psycopg.adapt import Loader
from psycopg.types.datetime import TimestampLoader, TimestamptzLoader
from pydantic import BaseModel, ConfigDict, Field

from dynomatic_daemon.models import QueueReading, QueueSelector, QueueStats

IDENTIFIER = Annotated[str, Field(min_length=1, max_length=63)]


class AdapterOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    # Name of an environment variable holding the URL of the database where this library's
    # tables live, when that is not [database]'s (solid_queue's own database, say).
    url_env: Annotated[str | None, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = None


class QueueReader(Protocol):
    name: str

    def read(
        self, conn: psycopg.Connection[Any], selectors: Sequence[QueueSelector], cap: int
    ) -> QueueReading:
        """Per-queue facts for every queue the selectors name or match, in one round trip."""
        ...


class AdapterModule(Protocol):
    Options: type[AdapterOptions]
    Reader: Callable[[Any], QueueReader]
    detect: Callable[[psycopg.Connection[Any], Any], str | None]


def qualified(schema: str | None, name: str) -> sql.Identifier:
    """``schema.name``, or ``name`` alone to follow the search_path as the library does."""
    return sql.Identifier(schema, name) if schema else sql.Identifier(name)


def index_statement(template: str, schema: str | None, table: str, kind: str = "idx") -> str:
    """``template`` with ``{t}`` the table and ``{name}`` the index, ``<table>_dynomatic_<kind>``:
    the table name is cut to 40 characters so that the index name stays within PostgreSQL's 63
    (a longer one would be truncated, and two such indexes could collide)."""
    name = sql.Identifier(f"{table[:40]}_dynomatic_{kind}")
    return sql.SQL(template).format(name=name, t=qualified(schema, table)).as_string(None)


def selection(selectors: Sequence[QueueSelector]) -> dict[str, Any]:
    """The ``%(names)s`` and ``%(discover)s`` parameters every read statement takes."""
    return {
        "names": sorted({n for s in selectors for n in s.exact_names}),
        "discover": any(s.needs_discovery for s in selectors),
    }


def skip_scan(table: str, column: str, where: str = "true", first: str = "true") -> str:
    """The ``found(q)`` CTE: the distinct non-NULL ``column`` values of the rows of ``table``
    matching ``where``, one index descent each, when ``%(discover)s`` (and ``first``, a
    condition checked once) holds. ``where`` names columns bare, or through an alias that
    ``table`` gives (``"{t} j"``) when it shares a fragment with the rest of the statement.

    There is no limit on how many it finds: a limit hid the ready work of the queues past it
    (issue 10). Each step is one descent of an index leading with ``column``, so the cost grows
    with the number of queues, never with the number of rows."""
    return f"""found(q) AS (
    (SELECT {column} FROM {table}
      WHERE %(discover)s AND {first} AND {where} AND {column} IS NOT NULL
      ORDER BY {column} LIMIT 1)
    UNION ALL
    SELECT (SELECT {column} FROM {table}
             WHERE {where} AND {column} > found.q ORDER BY {column} LIMIT 1)
    FROM found WHERE found.q IS NOT NULL
)"""


def fetch(
    conn: psycopg.Connection[Any], query: sql.Composed, params: dict[str, Any] | None
) -> list[tuple[Any, ...]]:
    """Run one read statement. A time Python cannot hold (``-infinity``, a BC date, both of
    which PostgreSQL stores) comes back as None rather than failing the whole read: one such
    row must not hide every other queue's work (issue 10)."""
    with conn.cursor() as cur:
        cur.adapters.register_loader("timestamp", _LenientTimestamp)
        cur.adapters.register_loader("timestamptz", _LenientTimestamptz)
        cur.execute(query, params)
        return cur.fetchall()


class _Lenient(Loader):
    """The stock loader, with None for a value it refuses (out of Python's datetime range)."""

    stock: type[Loader]

    def __init__(self, oid: int, context: AdaptContext | None = None) -> None:
        super().__init__(oid, context)
        self._stock = self.stock(oid, context)

    def load(self, data: Buffer) -> Any:
        try:
            return self._stock.load(data)
        except psycopg.DataError:
            return None


class _LenientTimestamp(_Lenient):
    stock = TimestampLoader


class _LenientTimestamptz(_Lenient):
    stock = TimestamptzLoader


def table_columns(
    conn: psycopg.Connection[Any], schema: str | None, table: str, required: Iterable[str]
) -> bool:
    """Whether ``schema.table`` (``schema`` None: the current schema) has every named column:
    detection by the columns a reader needs, not by how many of them there are."""
    row = conn.execute(COLUMNS_SQL, {"schema": schema, "table": table}).fetchone()
    return row is not None and set(required) <= set(row[0])


COLUMNS_SQL = """
SELECT ARRAY(SELECT column_name::text FROM information_schema.columns
             WHERE table_schema = COALESCE(%(schema)s, current_schema())
               AND table_name = %(table)s)
"""


def reading(adapter: str, rows: Sequence[tuple[Any, ...]], cap: int) -> QueueReading:
    """The reading from rows shaped ``db_now, queue, ready, oldest, age, running[, ...]``.

    Every read statement returns one row even with nothing to report (``queue`` NULL), so that
    the database clock comes back; ``ready`` is cut to ``cap`` and flagged as capped there."""
    stats = tuple(_stats(row, cap) for row in rows if row[1] is not None)
    db_now: datetime = rows[0][0]  # now() is timestamptz, so aware
    return QueueReading(adapter, db_now.astimezone(UTC), stats)


def _stats(row: tuple[Any, ...], cap: int) -> QueueStats:
    _db_now, name, ready, oldest, age, running = row[:6]
    # no age without a time it counts from (a time out of Python's range loads as None)
    known = oldest is not None and age is not None and math.isfinite(age)
    return QueueStats(
        queue=str(name),
        ready=min(int(ready), cap),
        ready_capped=int(ready) >= cap,
        oldest_eligible_at=aware_utc(oldest),
        oldest_ready_age_seconds=max(0.0, float(age)) if known else None,
        running=None if running is None else int(running),
    )


def aware_utc(value: datetime | None) -> datetime | None:
    """Naive values hold UTC (the Rails and Oban convention); aware ones are converted."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
