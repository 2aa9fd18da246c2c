"""``adapter = "auto"``: find which queue library's tables the database holds.

Each adapter module's ``detect`` looks for its own tables (and version markers) and describes what
it saw. Exactly one match picks the adapter; none or several stop the start with the findings and
how to choose, since guessing wrong would scale on the wrong numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from dynomatic_daemon.adapters import catalog
from dynomatic_daemon.adapters.base import AdapterOptions
from dynomatic_daemon.config import Settings
from dynomatic_daemon.db import Database
from dynomatic_daemon.errors import ConfigError, Problem


def findings(settings: Settings, database_for: Callable[[str], Database]) -> dict[str, str]:
    """Every detectable library whose tables are present, with what was seen."""
    found: dict[str, str] = {}
    for name in catalog.DETECTABLE:
        evidence = database_for(name).run(_prober(name, settings.adapter_options(name)))
        if evidence:
            found[name] = evidence
    return found


def _prober(name: str, options: AdapterOptions) -> Callable[[psycopg.Connection[Any]], str | None]:
    detect = catalog.load(name).detect
    return lambda conn: detect(conn, options)


def resolve_auto(
    settings: Settings, database_for: Callable[[str], Database]
) -> tuple[Settings, dict[str, str]]:
    """Settings with every ``adapter = "auto"`` replaced by the one library found, and what
    was found (empty when nothing was auto)."""
    auto = [i for i, p in enumerate(settings.process) if p.adapter == catalog.AUTO]
    if not auto:
        return settings, {}
    found = findings(settings, database_for)
    if len(found) != 1:
        raise ConfigError([Problem(f"process[{i}].adapter", explain(found)) for i in auto])
    (name,) = found
    procs = tuple(
        p.model_copy(update={"adapter": name}) if p.adapter == catalog.AUTO else p
        for p in settings.process
    )
    return settings.model_copy(update={"process": procs}), found


def explain(found: dict[str, str]) -> str:
    if not found:
        return (
            "auto-detection found no known queue tables in the database; set adapter to one of "
            f"{', '.join(catalog.NAMES)} (and its schema/table under [adapters.<name>] if moved)"
        )
    seen = "; ".join(f"{name}: {what}" for name, what in sorted(found.items()))
    return (
        f"auto-detection found several queue libraries ({seen}); "
        'set adapter = "<name>" on each [[process]] to choose'
    )
