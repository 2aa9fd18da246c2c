-- JobRunr's SQL storage on PostgreSQL (jobrunr/jobrunr, core/src/main/resources/org/jobrunr/
-- storage/sql/common/migrations/v000..v016 with the postgres/migrations/v014 override; read at
-- tag v8.7.1): the tables the job state lives in after those migrations, written by us from
-- them, without a table prefix. JobRunr's unquoted camelCase names fold to lower case. v014
-- (JobRunr 5.2) replaced the updatedAt index by (state, updatedAt); v015 (6.0) and v016 (8.0:
-- the stats view counts AWAITING jobs) change nothing read here, so this file serves 6.x-8.x.
-- Left out: jobrunr_recurring_jobs, jobrunr_metadata and the jobrunr_jobs_stats view.
CREATE TABLE jobrunr_migrations
(
    id          nchar(36) PRIMARY KEY,
    script      varchar(64) NOT NULL,
    installedOn varchar(29) NOT NULL
);
CREATE TABLE jobrunr_jobs
(
    id             NCHAR(36) PRIMARY KEY,
    version        int          NOT NULL,
    jobAsJson      text         NOT NULL,
    jobSignature   VARCHAR(512) NOT NULL,
    state          VARCHAR(36)  NOT NULL,
    createdAt      TIMESTAMP    NOT NULL,
    updatedAt      TIMESTAMP    NOT NULL,
    scheduledAt    TIMESTAMP,
    recurringJobId VARCHAR(128)
);
CREATE INDEX jobrunr_state_idx ON jobrunr_jobs (state);
CREATE INDEX jobrunr_job_signature_idx ON jobrunr_jobs (jobSignature);
CREATE INDEX jobrunr_job_created_at_idx ON jobrunr_jobs (createdAt);
CREATE INDEX jobrunr_job_scheduled_at_idx ON jobrunr_jobs (scheduledAt);
CREATE INDEX jobrunr_job_rci_idx ON jobrunr_jobs (recurringJobId);
CREATE INDEX jobrunr_jobs_state_updated_idx ON jobrunr_jobs (state ASC, updatedAt ASC);
CREATE TABLE jobrunr_backgroundjobservers
(
    id                         NCHAR(36) PRIMARY KEY,
    workerPoolSize             int           NOT NULL,
    pollIntervalInSeconds      int           NOT NULL,
    firstHeartbeat             TIMESTAMP(6)  NOT NULL,
    lastHeartbeat              TIMESTAMP(6)  NOT NULL,
    running                    int           NOT NULL,
    systemTotalMemory          BIGINT        NOT NULL,
    systemFreeMemory           BIGINT        NOT NULL,
    systemCpuLoad              NUMERIC(3, 2) NOT NULL,
    processMaxMemory           BIGINT        NOT NULL,
    processFreeMemory          BIGINT        NOT NULL,
    processAllocatedMemory     BIGINT        NOT NULL,
    processCpuLoad             NUMERIC(3, 2) NOT NULL,
    deleteSucceededJobsAfter   VARCHAR(32),
    permanentlyDeleteJobsAfter VARCHAR(32),
    name                       VARCHAR(128)
);
CREATE INDEX jobrunr_bgjobsrvrs_fsthb_idx ON jobrunr_backgroundjobservers (firstHeartbeat);
CREATE INDEX jobrunr_bgjobsrvrs_lsthb_idx ON jobrunr_backgroundjobservers (lastHeartbeat);
