"""What every adapter module provides, and the option model they all share.

An adapter module ``dynomatic_daemon/adapters/<name>.py`` exports:

- ``Options``: a subclass of ``AdapterOptions`` (validated from ``[adapters.<name>]``);
- ``Reader``: ``Reader(options)`` with ``name`` and ``read(conn, selectors, cap) -> QueueReading``;
- ``detect(conn, options) -> str | None``: for ``adapter = "auto"``, a short description of the
  library's tables when they are present (``"table public.delayed_jobs"``), else None.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, Protocol

import psycopg
from pydantic import BaseModel, ConfigDict, Field

from dynomatic_daemon.models import QueueReading, QueueSelector

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
