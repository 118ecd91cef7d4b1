-- The PostgreSQL mycelium's tables and indexes, all in the schema "elfc", created in one
-- transaction on an empty database. Bump SCHEMA_VERSION in __init__.py on any change, with
-- the statements that bring the previous version to it in MIGRATIONS. Ids and hashes are
-- lowercase hex compared in the "C" collation, so that a prefix is an index range.
CREATE SCHEMA IF NOT EXISTS elfc;
CREATE TABLE elfc.meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE elfc.elves (
    name text PRIMARY KEY, cls text NOT NULL, module text NOT NULL, config text NOT NULL,
    revision text NOT NULL, doc text, last_seen float8 NOT NULL
);
CREATE TABLE elfc.revisions (
    hash text COLLATE "C" PRIMARY KEY, kind text NOT NULL, qualname text NOT NULL,
    module text NOT NULL, source text NOT NULL, doc text, signature text
);
CREATE TABLE elfc.graphs (revision text PRIMARY KEY, template bytea NOT NULL);
CREATE TABLE elfc.runs (
    no bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id text COLLATE "C" NOT NULL UNIQUE,
    pipeline text NOT NULL, revision text NOT NULL, arguments bytea NOT NULL,
    output bytea NOT NULL, status text NOT NULL, total integer NOT NULL,
    created float8 NOT NULL, finished float8,
    -- A run's own failure (its value refused by its return annotation): NULL unless failed so.
    error_type text, error_message text, error_time float8
);
-- Job counts per (run, elf, status); running jobs stay in the ready bucket (claims leave the
-- counters alone) and are counted from the jobs_running index instead.
CREATE TABLE elfc.run_counts (
    run_no bigint NOT NULL, elf text NOT NULL, status text NOT NULL, n integer NOT NULL,
    PRIMARY KEY (run_no, elf, status)
);
CREATE SEQUENCE elfc.job_no AS bigint;
CREATE TABLE elfc.jobs (
    no bigint PRIMARY KEY, id text COLLATE "C" NOT NULL UNIQUE, run_no bigint NOT NULL,
    key text NOT NULL, node text NOT NULL, elf text NOT NULL, task text NOT NULL,
    revision text NOT NULL, seq integer NOT NULL,
    status text NOT NULL, waiting integer NOT NULL, dependents integer NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    not_before float8 NOT NULL DEFAULT 0, lease float8, lease_owner text, lease_until float8,
    created float8 NOT NULL, started float8, finished float8, history jsonb,
    reuse boolean NOT NULL DEFAULT false, cache_key text COLLATE "C", cached_from text
);
-- A job's arguments and dependency keys never change: kept out of the jobs row, which every
-- status change and counter update rewrites.
CREATE TABLE elfc.job_payloads (
    job bigint PRIMARY KEY, args bytea NOT NULL, kwargs bytea NOT NULL, deps bytea NOT NULL
);
CREATE UNIQUE INDEX jobs_by_run_key ON elfc.jobs (run_no, key);
CREATE INDEX jobs_ready ON elfc.jobs (elf, run_no, seq) WHERE status = 'ready';
CREATE INDEX jobs_running ON elfc.jobs (lease_until) WHERE status = 'running';
-- Caching by input: the succeeded jobs by the key of what they computed, and the jobs that
-- reused a result (counted per run).
CREATE INDEX jobs_by_cache_key ON elfc.jobs (cache_key, finished)
    WHERE status = 'succeeded' AND cache_key IS NOT NULL;
CREATE INDEX jobs_cached ON elfc.jobs (run_no) WHERE cached_from IS NOT NULL;
CREATE TABLE elfc.edges (
    dep bigint NOT NULL, dependent bigint NOT NULL, PRIMARY KEY (dep, dependent)
);
CREATE TABLE elfc.results (job bigint PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE elfc.failures (
    hash text PRIMARY KEY, error_type text NOT NULL, message text NOT NULL,
    traceback text NOT NULL, count integer NOT NULL, first_seen float8 NOT NULL,
    last_seen float8 NOT NULL, elf text NOT NULL, task text NOT NULL, revision text NOT NULL
);
CREATE INDEX failures_by_last_seen ON elfc.failures (last_seen);
CREATE TABLE elfc.job_failures (
    no bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, job bigint NOT NULL,
    failure text NOT NULL, time float8 NOT NULL, attempt integer NOT NULL
);
CREATE INDEX job_failures_by_job ON elfc.job_failures (job);
CREATE TABLE elfc.workers (
    id text PRIMARY KEY, elf text NOT NULL, host text NOT NULL, pid integer NOT NULL,
    started float8 NOT NULL, heartbeat float8 NOT NULL
);
CREATE INDEX workers_by_heartbeat ON elfc.workers (heartbeat);
-- What job attempts wrote, appended only; ``no`` keeps the order records were stored in.
-- The text is UTF-8 in bytea: task output may hold NUL characters, which text refuses.
CREATE TABLE elfc.logs (
    no bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, job bigint NOT NULL,
    run_no bigint NOT NULL, attempt integer NOT NULL, time float8 NOT NULL,
    text bytea NOT NULL, truncated bigint NOT NULL
);
CREATE INDEX logs_by_run ON elfc.logs (run_no, time);
