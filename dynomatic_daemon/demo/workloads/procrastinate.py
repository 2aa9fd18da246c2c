"""procrastinate 3.x (the 3.10 schema, ``procrastinate/sql/schema.sql``).

Tables, created unqualified where ``search_path`` points as procrastinate's own ``SchemaManager``
does: the ``procrastinate_job_status`` and ``procrastinate_job_event_type`` enums,
``procrastinate_workers``, ``procrastinate_jobs`` with its indexes, and ``procrastinate_events``
with the two triggers that write a job's ``deferred`` and status-change events (the daemon reads
a job's wait from them). The periodic-defer table, the NOTIFY and abort triggers and the SQL
functions are left out (the simulated workers poll and inline what the functions do).
Enqueue: ``procrastinate_defer_jobs_v1``'s insert of jobs on queue ``default``, to run at once.
Claim: ``procrastinate_fetch_job_v2``'s statement for queue ``default``, taking up to ``limit``
jobs instead of one: lock the first unblocked due ``todo`` rows in (priority DESC, id) order with
``SKIP LOCKED`` and mark them ``doing`` (the ``started`` event follows from the trigger). A real
worker passes the id it registered in ``procrastinate_workers``; the simulated ones register
none, so ``worker_id`` stays NULL. The wait is from the job's ``deferred`` event (or its
``scheduled_at``, if later). Finish: ``procrastinate_finish_job_v1(id, 'succeeded', false)``:
``succeeded`` with ``attempts + 1`` (the row stays, as with the default ``delete_jobs="never"``).
"""

from __future__ import annotations

from dynomatic_daemon.demo.workloads.base import SqlWorkload

DDL = """
CREATE TYPE procrastinate_job_status AS ENUM (
    'todo', 'doing', 'succeeded', 'failed', 'cancelled', 'aborting', 'aborted'
);
CREATE TYPE procrastinate_job_event_type AS ENUM (
    'deferred', 'started', 'deferred_for_retry', 'failed', 'succeeded', 'cancelled',
    'abort_requested', 'aborted', 'scheduled', 'retried'
);
CREATE TABLE procrastinate_workers(
    id bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
    last_heartbeat timestamp with time zone NOT NULL DEFAULT NOW()
);
CREATE TABLE procrastinate_jobs (
    id bigserial PRIMARY KEY,
    queue_name character varying(128) NOT NULL,
    task_name character varying(128) NOT NULL,
    priority integer DEFAULT 0 NOT NULL,
    lock text,
    queueing_lock text,
    args jsonb DEFAULT '{}' NOT NULL,
    status procrastinate_job_status DEFAULT 'todo'::procrastinate_job_status NOT NULL,
    scheduled_at timestamp with time zone NULL,
    attempts integer DEFAULT 0 NOT NULL,
    abort_requested boolean DEFAULT false NOT NULL,
    worker_id bigint REFERENCES procrastinate_workers(id) ON DELETE SET NULL,
    CONSTRAINT check_not_todo_abort_requested
        CHECK (NOT (status = 'todo' AND abort_requested = true))
);
CREATE TABLE procrastinate_events (
    id bigserial PRIMARY KEY,
    job_id bigint NOT NULL REFERENCES procrastinate_jobs ON DELETE CASCADE,
    type procrastinate_job_event_type,
    at timestamp with time zone DEFAULT NOW() NULL
);
CREATE UNIQUE INDEX procrastinate_jobs_queueing_lock_idx_v1 ON procrastinate_jobs (queueing_lock)
    WHERE status = 'todo';
CREATE UNIQUE INDEX procrastinate_jobs_lock_idx_v1 ON procrastinate_jobs (lock)
    WHERE status = 'doing';
CREATE INDEX idx_procrastinate_jobs_worker_not_null ON procrastinate_jobs(worker_id)
    WHERE worker_id IS NOT NULL AND status = 'doing'::procrastinate_job_status;
CREATE INDEX procrastinate_jobs_queue_name_idx_v1 ON procrastinate_jobs(queue_name);
CREATE INDEX procrastinate_jobs_id_lock_idx_v1 ON procrastinate_jobs (id, lock)
    WHERE status = ANY (ARRAY['todo'::procrastinate_job_status,
                              'doing'::procrastinate_job_status]);
CREATE INDEX procrastinate_jobs_priority_idx_v1 ON procrastinate_jobs(priority desc, id asc)
    WHERE (status = 'todo'::procrastinate_job_status);
CREATE INDEX procrastinate_events_job_id_fkey_v1 ON procrastinate_events(job_id);
CREATE INDEX idx_procrastinate_workers_last_heartbeat ON procrastinate_workers(last_heartbeat);

CREATE FUNCTION procrastinate_trigger_function_status_events_insert_v1()
    RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO procrastinate_events(job_id, type)
        VALUES (NEW.id, 'deferred'::procrastinate_job_event_type);
    RETURN NEW;
END;
$$;

CREATE FUNCTION procrastinate_trigger_function_status_events_update_v1()
    RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    WITH t AS (
        SELECT CASE
            WHEN OLD.status = 'todo'::procrastinate_job_status
                AND NEW.status = 'doing'::procrastinate_job_status
                THEN 'started'::procrastinate_job_event_type
            WHEN OLD.status = 'doing'::procrastinate_job_status
                AND NEW.status = 'todo'::procrastinate_job_status
                THEN 'deferred_for_retry'::procrastinate_job_event_type
            WHEN OLD.status = 'doing'::procrastinate_job_status
                AND NEW.status = 'failed'::procrastinate_job_status
                THEN 'failed'::procrastinate_job_event_type
            WHEN OLD.status = 'doing'::procrastinate_job_status
                AND NEW.status = 'succeeded'::procrastinate_job_status
                THEN 'succeeded'::procrastinate_job_event_type
            WHEN OLD.status = 'todo'::procrastinate_job_status
                AND (
                    NEW.status = 'cancelled'::procrastinate_job_status
                    OR NEW.status = 'failed'::procrastinate_job_status
                    OR NEW.status = 'succeeded'::procrastinate_job_status
                )
                THEN 'cancelled'::procrastinate_job_event_type
            WHEN OLD.status = 'doing'::procrastinate_job_status
                AND NEW.status = 'aborted'::procrastinate_job_status
                THEN 'aborted'::procrastinate_job_event_type
            WHEN OLD.status = 'failed'::procrastinate_job_status
                AND NEW.status = 'todo'::procrastinate_job_status
                THEN 'retried'::procrastinate_job_event_type
            ELSE NULL
        END as event_type
    )
    INSERT INTO procrastinate_events(job_id, type)
        SELECT NEW.id, t.event_type
        FROM t
        WHERE t.event_type IS NOT NULL;
    RETURN NEW;
END;
$$;

CREATE TRIGGER procrastinate_trigger_status_events_update_v1
    AFTER UPDATE OF status ON procrastinate_jobs
    FOR EACH ROW
    EXECUTE PROCEDURE procrastinate_trigger_function_status_events_update_v1();

CREATE TRIGGER procrastinate_trigger_status_events_insert_v1
    AFTER INSERT ON procrastinate_jobs
    FOR EACH ROW WHEN ((new.status = 'todo'::procrastinate_job_status))
    EXECUTE PROCEDURE procrastinate_trigger_function_status_events_insert_v1();
"""

ENQUEUE = """
INSERT INTO procrastinate_jobs
    (queue_name, task_name, priority, lock, queueing_lock, args, scheduled_at)
SELECT 'default', 'demo.tasks.work', 0, NULL, NULL, '{}'::jsonb, NULL
FROM generate_series(1, %(count)s)
"""

CLAIM = """
WITH candidate AS (
    SELECT jobs.*
        FROM procrastinate_jobs AS jobs
        WHERE
            NOT EXISTS (
                SELECT 1
                    FROM procrastinate_jobs AS other_jobs
                    WHERE
                        jobs.lock IS NOT NULL
                        AND other_jobs.lock = jobs.lock
                        AND (
                            other_jobs.status = 'doing'
                            OR (
                                other_jobs.status = 'todo'
                                AND (
                                    other_jobs.priority > jobs.priority
                                    OR (other_jobs.priority = jobs.priority
                                        AND other_jobs.id < jobs.id)
                                )
                            )
                        )
            )
            AND jobs.status = 'todo'
            AND jobs.queue_name = ANY(ARRAY['default']::varchar[])
            AND (jobs.scheduled_at IS NULL OR jobs.scheduled_at <= now())
        ORDER BY jobs.priority DESC, jobs.id ASC LIMIT %(limit)s
        FOR UPDATE OF jobs SKIP LOCKED
)
UPDATE procrastinate_jobs
    SET status = 'doing', worker_id = NULL
    FROM candidate
    WHERE procrastinate_jobs.id = candidate.id
    RETURNING procrastinate_jobs.id,
              EXTRACT(EPOCH FROM (now() - COALESCE(GREATEST(candidate.scheduled_at, (
                  SELECT max(e.at) FROM procrastinate_events e
                  WHERE e.job_id = candidate.id AND e.type = 'deferred')), now())))::float8
"""

FINISH = """
UPDATE procrastinate_jobs
SET status = 'succeeded',
    abort_requested = false,
    attempts = CASE status WHEN 'doing' THEN attempts + 1 ELSE attempts END
WHERE id = ANY(%(ids)s) AND status IN ('todo', 'doing')
"""

WORKLOAD = SqlWorkload("procrastinate", DDL, ENQUEUE, CLAIM, FINISH)
