-- Django Tasks' database backend as django-tasks 0.8.0-0.11.x ships it
-- (RealOrangeOne/django-tasks, django_tasks/backends/database/migrations/0001..0016; 0.11 adds
-- 0017, a "metadata" jsonb NOT NULL column nothing here reads): the table after those
-- migrations on PostgreSQL, as `manage.py sqlmigrate` renders them (Django 5.2), written out by
-- us. Migration 0016 made run_after NOT NULL, storing tasks without one with the far-future
-- sentinel 9999-01-01 00:00 UTC, and renamed the NEW status READY. App label
-- django_tasks_database, so the table name below is Django's default for it.
CREATE TABLE django_tasks_database_dbtaskresult (
    id uuid NOT NULL PRIMARY KEY,
    status varchar(9) NOT NULL,
    args_kwargs jsonb NOT NULL,
    priority integer NOT NULL,
    task_path text NOT NULL,
    queue_name varchar(32) NOT NULL,
    backend_name varchar(32) NOT NULL,
    run_after timestamp with time zone NOT NULL,
    enqueued_at timestamp with time zone NOT NULL,
    finished_at timestamp with time zone,
    started_at timestamp with time zone,
    return_value jsonb,
    exception_class_path text NOT NULL,
    traceback text NOT NULL,
    worker_ids jsonb NOT NULL,
    CONSTRAINT priority_range CHECK (priority >= -100 AND priority <= 100)
);
CREATE INDEX django_task_new_ordering_idx ON django_tasks_database_dbtaskresult
    (status, priority DESC, run_after) WHERE status = 'READY';
CREATE INDEX django_task_queue_n_99c321_idx ON django_tasks_database_dbtaskresult (queue_name);
CREATE INDEX django_task_backend_071754_idx ON django_tasks_database_dbtaskresult (backend_name);
