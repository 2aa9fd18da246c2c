"""Whether a table has a usable index leading with given columns, asked inside a read statement.

Readers whose library ships no index that makes per-queue probes cheap run two plans in one
statement, and a one-time filter on this answer runs only one: per-queue probes that stop at
the cap when the index is there, one pass over the table when it is not (one pass beats one per
queue). Asking in the statement notices an index created while the daemon runs; an index still
being built (``CREATE INDEX CONCURRENTLY`` in progress) does not count, as the planner cannot
use it either.

Parameters: ``%(relation)s``, the table as ``relation_name()`` spells it, and ``%(lead0)s``,
``%(lead1)s``, the names of the index's first two columns. Such readers offer the index as
``recommended_indexes``, built with ``base.index_statement``.
"""

from __future__ import annotations

from psycopg import sql

LEADING_INDEX_SQL = """
SELECT EXISTS (
    SELECT 1 FROM pg_index i
    JOIN pg_attribute a0 ON a0.attrelid = i.indrelid AND a0.attnum = i.indkey[0]
    JOIN pg_attribute a1 ON a1.attrelid = i.indrelid AND a1.attnum = i.indkey[1]
    WHERE i.indrelid = to_regclass(%(relation)s) AND i.indisvalid AND i.indisready
      AND a0.attname = %(lead0)s AND a1.attname = %(lead1)s
) AS yes
"""


def relation_name(table: sql.Identifier) -> str:
    """The quoted (schema-qualified or not) name ``to_regclass`` resolves as the reads do."""
    return table.as_string(None)
