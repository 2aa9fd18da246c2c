-- Laravel's database queue driver (illuminate/queue), Laravel 8 to 12: the "jobs" table of
-- laravel/framework src/Illuminate/Queue/Console/stubs/jobs.stub (`queue:table`, Laravel 8-10)
-- and of laravel/laravel database/migrations/0001_01_01_000002_create_jobs_table.php (Laravel
-- 11-12, which uses $table->id() for bigIncrements), as Illuminate's PostgresGrammar renders
-- them: bigIncrements -> bigserial, string -> varchar(255), longText -> text,
-- unsignedTinyInteger -> smallint, unsignedInteger -> integer (PostgreSQL has no unsigned).
-- Written by us from those files; the same in every version covered. Times are Unix seconds.
-- The job_batches and failed_jobs tables of the same migration are left out: nothing we read
-- is in them (a job that fails for good is moved to failed_jobs).
create table "jobs" (
    "id" bigserial primary key not null,
    "queue" varchar(255) not null,
    "payload" text not null,
    "attempts" smallint not null,
    "reserved_at" integer null,
    "available_at" integer not null,
    "created_at" integer not null
);
create index "jobs_queue_index" on "jobs" ("queue");
