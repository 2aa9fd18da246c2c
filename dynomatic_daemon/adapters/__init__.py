"""Queue adapters: one module per job library, each reading facts and nothing else.

An adapter answers one question per tick, in one database round trip: for each queue it was asked
about (or, for wildcard and every-queue selectors, found), how many jobs are runnable right now
(a count bounded by ``cap``), when the oldest of them became runnable and how old it is on the
database's own clock, and how many are running where the library makes that knowable.

Adding an adapter:
1. ``adapters/<library>.py`` with a module docstring that is the storage contract (tables read,
   versions supported, what counts as ready / running / excluded) and SQL as named constants;
   identifiers from config through ``psycopg.sql.Identifier``, values as parameters. It exports
   ``Options``, ``Reader`` and ``detect`` (see ``adapters/base.py``).
2. Its name in ``catalog.NAMES``.
3. A schema file under ``sandbox/schemas/`` (test fixture, benchmark table and demo table in one),
   written from the library's documented schema, with the library version in a header comment.
4. An integration test with one case per job state, and a ``Kit`` in
   ``tests/integration/test_adapter_contract.py`` (how to add due and future jobs), which checks
   what every adapter promises: discovery without a cap, the cap, any session TimeZone, the
   database clock, a row whose time Python cannot hold. ``base.py`` has the shared pieces:
   ``selection`` (the names/discover parameters), ``skip_scan`` (queue discovery over an index
   leading with the queue column), ``fetch`` (one statement, lenient about out-of-range times),
   ``table_columns`` (detection by name), ``reading`` (rows to a reading), ``index_statement``
   (the ``recommended_indexes`` of a reader whose library ships no index serving per-queue
   probes; such a reader asks ``index_check`` in its statement whether the index is there).
5. A row in the README's library table.
"""

from __future__ import annotations

from dynomatic_daemon.adapters import catalog
from dynomatic_daemon.adapters.base import AdapterOptions, QueueReader


def build(name: str, options: AdapterOptions) -> QueueReader:
    return catalog.load(name).Reader(options)
