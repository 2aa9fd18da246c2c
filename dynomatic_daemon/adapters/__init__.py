"""Queue adapters: one module per job library, each reading facts and nothing else.

An adapter answers one question per tick, in one database round trip: for each queue it was asked
about (or, for wildcard and every-queue selectors, found), how many jobs are runnable right now
(a count bounded by ``cap``), when the oldest of them became runnable and how old it is on the
database's own clock, and how many are running where the library makes that knowable.

Adding an adapter:
1. ``adapters/<library>.py`` with a module docstring that is the storage contract (tables read,
   versions supported, what counts as ready / running / excluded) and SQL as named constants;
   identifiers from config through ``psycopg.sql.Identifier``, values as parameters.
2. Its options model in ``config.ADAPTER_OPTIONS`` and its factory in ``REGISTRY`` below.
3. A schema fixture under ``tests/fixtures/`` written from the library's documented schema, with
   the library version in a header comment.
4. An integration test with one case per job state, the cap, and a non-UTC session TimeZone.
5. A row in the README's library table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

import psycopg
from pydantic import BaseModel

from dynomatic_daemon.adapters.delayed_job import DelayedJobAdapter
from dynomatic_daemon.config import DelayedJobOptions
from dynomatic_daemon.models import QueueReading, QueueSelector

_T = TypeVar("_T", bound=BaseModel)


class Adapter(Protocol):
    name: str

    def read(
        self, conn: psycopg.Connection[Any], selectors: Sequence[QueueSelector], cap: int
    ) -> QueueReading:
        """Per-queue facts for every queue the selectors name or match, in one round trip."""
        ...


def _options(options: BaseModel, kind: type[_T]) -> _T:
    if not isinstance(options, kind):
        raise TypeError(f"expected {kind.__name__}, got {type(options).__name__}")
    return options


def _delayed_job(options: BaseModel) -> Adapter:
    return DelayedJobAdapter(_options(options, DelayedJobOptions))


REGISTRY: dict[str, Callable[[BaseModel], Adapter]] = {
    "delayed_job": _delayed_job,
}


def build(name: str, options: BaseModel) -> Adapter:
    return REGISTRY[name](options)
