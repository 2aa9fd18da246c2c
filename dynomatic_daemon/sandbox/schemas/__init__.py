"""The queue libraries' table definitions, one file per library version, written by us from each
library's documented schema and migrations (version and source in each file's header).

They are the schema fixtures of the adapter tests, the tables the benchmarks load and the tables
``dynomatic demo`` creates: one copy, shipped with the package.
"""

from __future__ import annotations

from pathlib import Path

SCHEMAS = Path(__file__).resolve().parent


def schema_sql(name: str) -> str:
    """The SQL of one file here, e.g. ``schema_sql("delayed_job.sql")``."""
    return (SCHEMAS / name).read_text(encoding="utf-8")
