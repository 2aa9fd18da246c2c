"""Simulated queue libraries for ``dynomatic demo``: each writes and works its real job table.

A workload creates the library's table as the library's own migration does, enqueues jobs, and
claims and finishes them with the statements the library's workers run, so the daemon reads the
very row states it meets in production. Adding a library is one module here that defines
``WORKLOAD`` (a ``SqlWorkload``, or anything that fits ``Workload``) and a line below.
"""

from __future__ import annotations

from dynomatic_daemon.demo.workloads.base import Claimed, SqlWorkload, Workload
from dynomatic_daemon.demo.workloads.chancy import WORKLOAD as CHANCY
from dynomatic_daemon.demo.workloads.delayed_job import WORKLOAD as DELAYED_JOB
from dynomatic_daemon.demo.workloads.django_q2 import WORKLOAD as DJANGO_Q2
from dynomatic_daemon.demo.workloads.django_tasks import WORKLOAD as DJANGO_TASKS
from dynomatic_daemon.demo.workloads.good_job import WORKLOAD as GOOD_JOB
from dynomatic_daemon.demo.workloads.graphile_worker import WORKLOAD as GRAPHILE_WORKER
from dynomatic_daemon.demo.workloads.jobrunr import WORKLOAD as JOBRUNR
from dynomatic_daemon.demo.workloads.laravel import WORKLOAD as LARAVEL
from dynomatic_daemon.demo.workloads.oban import WORKLOAD as OBAN
from dynomatic_daemon.demo.workloads.pgboss import WORKLOAD as PGBOSS
from dynomatic_daemon.demo.workloads.pgmq import WORKLOAD as PGMQ
from dynomatic_daemon.demo.workloads.pgqueuer import WORKLOAD as PGQUEUER
from dynomatic_daemon.demo.workloads.procrastinate import WORKLOAD as PROCRASTINATE
from dynomatic_daemon.demo.workloads.que import WORKLOAD as QUE
from dynomatic_daemon.demo.workloads.queue_classic import WORKLOAD as QUEUE_CLASSIC
from dynomatic_daemon.demo.workloads.river import WORKLOAD as RIVER
from dynomatic_daemon.demo.workloads.solid_queue import WORKLOAD as SOLID_QUEUE
from dynomatic_daemon.demo.workloads.symfony_messenger import WORKLOAD as SYMFONY_MESSENGER

__all__ = ["WORKLOADS", "Claimed", "SqlWorkload", "Workload"]

# The order is the order --adapter lists them in.
WORKLOADS: dict[str, Workload] = {
    w.adapter: w
    for w in (
        DELAYED_JOB, GOOD_JOB, QUE, SOLID_QUEUE, QUEUE_CLASSIC, RIVER, OBAN, PROCRASTINATE,
        PGQUEUER, PGBOSS, GRAPHILE_WORKER, PGMQ, CHANCY, LARAVEL, SYMFONY_MESSENGER, DJANGO_TASKS,
        DJANGO_Q2, JOBRUNR,
    )
}  # fmt: skip
