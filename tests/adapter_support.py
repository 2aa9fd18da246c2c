"""Helpers the adapter tests share."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg


def database_now(holder: Any) -> datetime:
    """``now()`` on the database clock (a later statement than any before it), from a
    connection or a test fixture object that holds one as ``conn``."""
    conn: psycopg.Connection[Any] = getattr(holder, "conn", holder)
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]
