"""Django Tasks with django-tasks-db 0.13's database backend.

Table: ``sandbox/schemas/django_tasks_db.sql`` (``django_tasks_database_dbtaskresult``).
Enqueue: ``DatabaseBackend.enqueue`` of a task without ``run_after`` on queue ``default``:
status ``READY``, ``run_after`` the 9999-01-01 sentinel, ``enqueued_at = now``. Claim:
``db_worker``'s ``DBTaskResult.objects.ready()`` in the model's order (priority DESC,
run_after, enqueued_at) with ``FOR UPDATE SKIP LOCKED``, then ``claim()``: ``RUNNING``,
``started_at = now``, the worker id appended. Finish: ``set_successful``: ``SUCCESSFUL``,
``finished_at = now`` (results stay until pruned).

Task ids are UUIDs: ``claim`` hands them on as their 128-bit integers (``int(UUID)``), and
``finish`` turns them back into UUIDs.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from dynomatic_daemon.demo.workloads.base import SqlWorkload
from dynomatic_daemon.sandbox.schemas import schema_sql

DDL = schema_sql("django_tasks_db.sql")

ENQUEUE = """
INSERT INTO django_tasks_database_dbtaskresult
    (id, status, args_kwargs, priority, task_path, queue_name, backend_name, run_after,
     enqueued_at, exception_class_path, traceback, worker_ids)
SELECT gen_random_uuid(), 'READY', '{"args": [], "kwargs": {}}', 0, 'demo.tasks.work',
       'default', 'default', timestamptz '9999-01-01 00:00:00+00', now(), '', '', '[]'
FROM generate_series(1, %(count)s)
"""

CLAIM = """
WITH next_tasks AS (
    SELECT t.id FROM django_tasks_database_dbtaskresult t
    WHERE t.status = 'READY' AND t.backend_name = 'default' AND t.queue_name = 'default'
      AND (t.run_after = timestamptz '9999-01-01 00:00:00+00' OR t.run_after <= now())
    ORDER BY t.priority DESC, t.run_after, t.enqueued_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
UPDATE django_tasks_database_dbtaskresult t
SET status = 'RUNNING', started_at = now(),
    worker_ids = t.worker_ids || to_jsonb(%(worker)s::text)
FROM next_tasks WHERE t.id = next_tasks.id
RETURNING t.id, extract(epoch FROM (t.started_at - t.enqueued_at))::float8
"""

FINISH = """
UPDATE django_tasks_database_dbtaskresult
SET status = 'SUCCESSFUL', finished_at = now(), return_value = 'null'
WHERE id = ANY(%(ids)s::uuid[]) AND status = 'RUNNING'
"""


@dataclass(frozen=True)
class UuidWorkload(SqlWorkload):
    """A ``SqlWorkload`` whose task ids are UUIDs, passed around as their integers."""

    def finish(self, conn: psycopg.Connection[Any], ids: Sequence[int]) -> None:
        conn.execute(self.finish_sql, {"ids": [uuid.UUID(int=task_id) for task_id in ids]})


WORKLOAD = UuidWorkload("django_tasks", DDL, ENQUEUE, CLAIM, FINISH)
