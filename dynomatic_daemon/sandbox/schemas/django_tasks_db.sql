-- Django Tasks' database backend as django-tasks-db 0.12-0.13 ships it (the backend split out of
-- django-tasks; django_tasks_db/migrations/0001..0021, same app label django_tasks_database, so
-- an app upgrading from django-tasks keeps its table): the table after those migrations on
-- PostgreSQL, as `manage.py sqlmigrate` renders them (Django 5.2), written out by us. Since
-- django-tasks 0.8's layout (django_tasks_0_8.sql): status SUCCEEDED became SUCCESSFUL (0018,
-- varchar(10)), the ordering index was renamed tasks_db_new_ordering_idx (0019) and gained
-- enqueued_at (0020/0021); 0017's metadata column was dropped again (0019).
CREATE TABLE django_tasks_database_dbtaskresult (
    id uuid NOT NULL PRIMARY KEY,
    status varchar(10) NOT NULL,
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
CREATE INDEX tasks_db_new_ordering_idx ON django_tasks_database_dbtaskresult
    (status, priority DESC, run_after, enqueued_at) WHERE status = 'READY';
CREATE INDEX django_task_queue_n_99c321_idx ON django_tasks_database_dbtaskresult (queue_name);
CREATE INDEX django_task_backend_071754_idx ON django_tasks_database_dbtaskresult (backend_name);
