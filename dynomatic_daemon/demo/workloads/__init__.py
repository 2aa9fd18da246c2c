"""Simulated queue libraries for ``dynomatic demo``: each writes and works its real job table.

A workload creates the library's table as the library's own migration does, enqueues jobs, and
claims and finishes them with the statements the library's workers run, so the daemon reads the
very row states it meets in production. Adding a library is one module here that defines
``WORKLOAD`` (a ``SqlWorkload``, or anything that fits ``Workload``) and a line below.
"""

from __future__ import annotations

from dynomatic_daemon.demo.workloads.base import Claimed, SqlWorkload, Workload
from dynomatic_daemon.demo.workloads.delayed_job import WORKLOAD as DELAYED_JOB
from dynomatic_daemon.demo.workloads.oban import WORKLOAD as OBAN
from dynomatic_daemon.demo.workloads.queue_classic import WORKLOAD as QUEUE_CLASSIC
from dynomatic_daemon.demo.workloads.river import WORKLOAD as RIVER

__all__ = ["WORKLOADS", "Claimed", "SqlWorkload", "Workload"]

# The order is the order --adapter lists them in.
WORKLOADS: dict[str, Workload] = {w.adapter: w for w in (DELAYED_JOB, QUEUE_CLASSIC, RIVER, OBAN)}
