"""The explicit list of queue adapters, loaded on first use.

Config validation needs every adapter's option model, so this module imports an adapter module
only when its name is used.
"""

from __future__ import annotations

import importlib
from typing import cast

from dynomatic_daemon.adapters.base import AdapterModule, AdapterOptions

AUTO = "auto"
# name -> module under dynomatic_daemon.adapters
NAMES: tuple[str, ...] = (
    "delayed_job",
    "good_job",
    "que",
    "solid_queue",
    "queue_classic",
    "river",
    "oban",
    "procrastinate",
    "pgqueuer",
    "pgboss",
    "graphile_worker",
    "pgmq",
    "chancy",
    "laravel",
    "symfony_messenger",
    "django_tasks",
    "django_q2",
    "jobrunr",
    "sql",
)
# Libraries auto-detection may pick; "sql" needs a query and is never guessed.
DETECTABLE = tuple(n for n in NAMES if n != "sql")


def load(name: str) -> AdapterModule:
    if name not in NAMES:
        raise KeyError(f"unknown adapter {name!r}")
    return cast(AdapterModule, importlib.import_module(f"dynomatic_daemon.adapters.{name}"))


def options_model(name: str) -> type[AdapterOptions]:
    return load(name).Options
