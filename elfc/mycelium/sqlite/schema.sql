-- The SQLite mycelium's tables and indexes, run statement by statement on an empty file.
-- Bump SCHEMA_VERSION in __init__.py on any change and add the statements that bring the
-- previous version here to MIGRATIONS there: an older database is migrated when opened, a
-- newer or unknown one refused.
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE elves (
    name TEXT PRIMARY KEY, cls TEXT NOT NULL, module TEXT NOT NULL, config TEXT NOT NULL,
    revision TEXT NOT NULL, doc TEXT, last_seen REAL NOT NULL
);
CREATE TABLE revisions (
    hash TEXT PRIMARY KEY, kind TEXT NOT NULL, qualname TEXT NOT NULL, module TEXT NOT NULL,
    source TEXT NOT NULL, doc TEXT, signature TEXT
);
CREATE TABLE graphs (revision TEXT PRIMARY KEY, template BLOB NOT NULL);
CREATE TABLE runs (
    no INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, pipeline TEXT NOT NULL,
    revision TEXT NOT NULL, arguments BLOB NOT NULL, output BLOB NOT NULL, status TEXT NOT NULL,
    total INTEGER NOT NULL, created REAL NOT NULL, finished REAL,
    -- A run's own failure (its value refused by its return annotation): NULL unless failed so.
    error_type TEXT, error_message TEXT, error_time REAL
);
CREATE TABLE run_counts (
    run_no INTEGER NOT NULL, elf TEXT NOT NULL, status TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (run_no, elf, status)
) WITHOUT ROWID;
CREATE TABLE jobs (
    no INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, run_no INTEGER NOT NULL, key TEXT NOT NULL,
    node TEXT NOT NULL, elf TEXT NOT NULL, task TEXT NOT NULL, revision TEXT NOT NULL,
    seq INTEGER NOT NULL,
    status TEXT NOT NULL, waiting INTEGER NOT NULL, dependents INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before REAL NOT NULL DEFAULT 0, lease REAL, lease_owner TEXT, lease_until REAL,
    created REAL NOT NULL, started REAL, finished REAL, history TEXT,
    reuse INTEGER NOT NULL DEFAULT 0, cache_key TEXT, cached_from TEXT
);
-- A job's arguments and dependency keys never change, and a reduce over n jobs holds O(n) of
-- them: kept out of the jobs row, which every status change and counter update rewrites whole.
CREATE TABLE job_payloads (
    job INTEGER PRIMARY KEY, args BLOB NOT NULL, kwargs BLOB NOT NULL, deps BLOB NOT NULL
);
CREATE UNIQUE INDEX jobs_by_run_key ON jobs (run_no, key);
CREATE INDEX jobs_ready ON jobs (elf, run_no, seq, not_before) WHERE status = 'ready';
CREATE INDEX jobs_running ON jobs (lease_until, elf, run_no) WHERE status = 'running';
-- Caching by input: the succeeded jobs by the key of what they computed, and the jobs that
-- reused a result (counted per run).
CREATE INDEX jobs_by_cache_key ON jobs (cache_key, finished)
    WHERE status = 'succeeded' AND cache_key IS NOT NULL;
CREATE INDEX jobs_cached ON jobs (run_no) WHERE cached_from IS NOT NULL;
CREATE TABLE edges (
    dep INTEGER NOT NULL, dependent INTEGER NOT NULL, PRIMARY KEY (dep, dependent)
) WITHOUT ROWID;
CREATE TABLE results (job INTEGER PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE failures (
    hash TEXT PRIMARY KEY, error_type TEXT NOT NULL, message TEXT NOT NULL,
    traceback TEXT NOT NULL, count INTEGER NOT NULL, first_seen REAL NOT NULL,
    last_seen REAL NOT NULL, elf TEXT NOT NULL, task TEXT NOT NULL, revision TEXT NOT NULL
);
CREATE INDEX failures_by_last_seen ON failures (last_seen);
CREATE TABLE job_failures (
    job INTEGER NOT NULL, failure TEXT NOT NULL, time REAL NOT NULL, attempt INTEGER NOT NULL
);
CREATE INDEX job_failures_by_job ON job_failures (job);
CREATE INDEX job_failures_by_failure ON job_failures (failure);
CREATE TABLE workers (
    id TEXT PRIMARY KEY, elf TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,
    started REAL NOT NULL, heartbeat REAL NOT NULL
);
CREATE INDEX workers_by_heartbeat ON workers (heartbeat);
-- What each job attempt wrote (stdout, stderr, logging records), bounded by the worker;
-- appended, never replaced (a retried job's attempts start again at 1).
CREATE TABLE logs (
    job INTEGER NOT NULL, attempt INTEGER NOT NULL, run_no INTEGER NOT NULL, time REAL NOT NULL,
    text TEXT NOT NULL, truncated INTEGER NOT NULL
);
CREATE INDEX logs_by_run ON logs (run_no, time);
