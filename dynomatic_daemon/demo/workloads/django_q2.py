"""django-q2's ORM broker, django-q2 1.4.10+ ("lock until" style).

Table: ``sandbox/schemas/django_q2.sql`` (``django_q_ormq``). Enqueue: ``ORM.enqueue`` for the
cluster ``default``: ``lock = now``. Claim: ``ORM.dequeue``: rows with ``lock < now``, each
moved to ``lock = now + retry`` (60 s) if no other cluster moved it first (here: ``FOR UPDATE
SKIP LOCKED``). Finish: ``acknowledge`` deletes the row.
"""

from __future__ import annotations

from dynomatic_daemon.demo.workloads.base import SqlWorkload
from dynomatic_daemon.sandbox.schemas import schema_sql

DDL = schema_sql("django_q2.sql")

ENQUEUE = """
INSERT INTO django_q_ormq (key, payload, lock)
SELECT 'default', 'demo-signed-package', now() FROM generate_series(1, %(count)s)
"""

CLAIM = """
WITH taken AS (
    SELECT q.id, q.lock AS was FROM django_q_ormq q
    WHERE q.key = 'default' AND q.lock < now()
    ORDER BY q.id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
UPDATE django_q_ormq SET lock = now() + interval '60 seconds'
FROM taken WHERE django_q_ormq.id = taken.id
RETURNING django_q_ormq.id, extract(epoch FROM (now() - taken.was))::float8
"""

FINISH = "DELETE FROM django_q_ormq WHERE id = ANY(%(ids)s)"

WORKLOAD = SqlWorkload("django_q2", DDL, ENQUEUE, CLAIM, FINISH)
