"""The ArangoDB mycelium's layout and every AQL statement it runs.

Nothing here talks to a server: this module is data. ``arango.py`` runs these queries and
nothing else. Rules every query follows (``tests/mycelium/test_arango_offline.py`` checks them):

* a query is a constant string: values reach the server only as bind parameters (``@name``);
  the three generic statements (inserts, prefix lookups) take their collection as a collection
  parameter (``@@collection``);
* its first line is ``// index: collection/index, ...``, naming what keeps it off a full
  collection scan (``primary`` and ``edge`` are the indexes ArangoDB always has;
  ``@@collection/primary`` is the primary index of the collection bound to ``@@collection``);
* a query modifies one collection at most, and never reads it after writing it (AQL refuses
  that); operations that write several collections run several queries in one stream
  transaction, which sees its own writes;
* a conditional write (``FILTER j.status == "running" ...`` then ``UPDATE``) passes the
  document it read, ``_rev`` included, with ``ignoreRevs: false``: if another transaction
  changed it since, the write fails with a write-write conflict (error 1200) and the caller
  retries with jittered backoff, instead of acting on a stale read.

Checked against the ArangoDB 3.12 documentation (AQL high-level operations, traversals, stream
transactions, persistent indexes with ``storedValues``).

Documents store their JSON payloads (job arguments, results, run output, templates) as JSON
text: a value comes back byte for byte as it went in, integers beyond 64 bits and key order
included, which ArangoDB's own number and object handling would not promise.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "COLLECTIONS",
    "EDGE_COLLECTIONS",
    "GRAPHS",
    "INDEXES",
    "QUERIES",
    "RERUNNABLE",
    "SCHEMA_VERSION",
    "UPGRADABLE",
    "Index",
    "Query",
    "bind",
    "parameters",
]

SCHEMA_VERSION = 4
"""Bump on any change to the layout below; a mycelium of another version is refused, but for
the versions in :data:`UPGRADABLE`."""

UPGRADABLE: frozenset[int] = frozenset({1, 2, 3})
"""Older versions whose layout is this one's minus collections and indexes: opening one
creates what is missing and records the new version (1 -> 2 added ``elfc_logs``, 2 -> 3 the
``elfc_jobs/by_run_key`` index, 3 -> 4 the ``elfc_jobs/by_cache_key`` index; a job document
stored before 4 has no ``reuse``, ``cache_key`` or ``cached_from`` field, which reads as false
or null)."""

# -- layout ----------------------------------------------------------------------------

META = "elfc_meta"
ELVES = "elfc_elves"
REVISIONS = "elfc_revisions"
TEMPLATES = "elfc_graphs"
TEMPLATE_NODES = "elfc_template_nodes"
TEMPLATE_EDGES = "elfc_template_edges"
TEMPLATE_ROOTS = "elfc_template_roots"
RUNS = "elfc_runs"
RUN_ROOTS = "elfc_run_roots"
JOBS = "elfc_jobs"
DEPS = "elfc_deps"
RESULTS = "elfc_results"
FAILURES = "elfc_failures"
JOB_FAILURES = "elfc_job_failures"
WORKERS = "elfc_workers"
LOGS = "elfc_logs"

EDGE_COLLECTIONS: tuple[str, ...] = (TEMPLATE_EDGES, TEMPLATE_ROOTS, RUN_ROOTS, DEPS, JOB_FAILURES)
COLLECTIONS: tuple[str, ...] = (
    META,
    ELVES,
    REVISIONS,
    TEMPLATES,
    TEMPLATE_NODES,
    RUNS,
    JOBS,
    RESULTS,
    FAILURES,
    WORKERS,
    LOGS,
    *EDGE_COLLECTIONS,
)
"""Every collection, edge collections last (a named graph needs its vertex collections)."""

GRAPHS: dict[str, tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]] = {
    # A run in the web UI's graph viewer: start at the run, depth ~10. Only vertices of that
    # run: a failure is shared by every job (of any run) that raised it, so a traversal
    # through failures would reach other runs.
    "elfc_runs": (
        (RUN_ROOTS, (RUNS,), (JOBS,)),
        (DEPS, (JOBS,), (JOBS,)),
    ),
    # Failures and the jobs that raised them: start at elfc_failures/HASH.
    "elfc_failures": ((JOB_FAILURES, (JOBS,), (FAILURES,)),),
    # A compiled pipeline: start at its template (elfc_graphs/<revision>).
    "elfc_templates": (
        (TEMPLATE_ROOTS, (TEMPLATES,), (TEMPLATE_NODES,)),
        (TEMPLATE_EDGES, (TEMPLATE_NODES,), (TEMPLATE_NODES,)),
    ),
}
"""Named graph -> (edge collection, from vertex collections, to vertex collections)."""


@dataclass(frozen=True)
class Index:
    """A persistent index. ``stored`` values ride along in the index for covering reads."""

    collection: str
    name: str
    fields: tuple[str, ...]
    stored: tuple[str, ...] = ()

    def definition(self) -> dict[str, object]:
        out: dict[str, object] = {
            "type": "persistent",
            "name": self.name,
            "fields": list(self.fields),
            "unique": False,
            "sparse": False,
        }
        if self.stored:
            out["storedValues"] = list(self.stored)
        return out


INDEXES: tuple[Index, ...] = (
    # claim: equality on elf and status, already in FIFO order, not_before checked in the index.
    # not_before comes last on purpose: before run_no it would make the claim a range scan
    # sorted in memory; after seq, a job waiting for its retry time is skipped inside the
    # index, its document never read.
    Index(JOBS, "claim", ("elf", "status", "run_no", "seq", "not_before")),
    # expired leases: running jobs by lease end.
    Index(JOBS, "lease", ("status", "lease_until")),
    # a run's jobs: counts per (elf, status) read from the index alone, settle probes, listings.
    Index(JOBS, "by_run", ("run", "status"), stored=("elf",)),
    # an expansion's jobs of the run by key (those its new jobs wait for).
    Index(JOBS, "by_run_key", ("run", "key")),
    # caching by input: the latest succeeded job of a cache key.
    Index(JOBS, "by_cache_key", ("cache_key", "status", "finished")),
    Index(RUNS, "by_no", ("no",)),
    Index(RESULTS, "by_run_key", ("run", "key")),
    Index(FAILURES, "by_last_seen", ("last_seen",)),
    Index(WORKERS, "by_heartbeat", ("heartbeat",)),
    Index(ELVES, "by_name", ("name",)),
    # a run's task output, oldest first.
    Index(LOGS, "by_run", ("run", "time")),
)
"""Unique secondary indexes are avoided: a cluster allows them only on shard keys."""


# -- queries ---------------------------------------------------------------------------

_TOKENS = re.compile(
    r"""//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`|\u00b4[^\u00b4]*\u00b4|@@?\w+""",
    re.DOTALL,
)


_WRITE = re.compile(r"\b(?:INSERT|UPDATE|REPLACE|REMOVE|UPSERT)\b")


def parameters(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """The value parameters (``@name``) and collection parameters (``@@name``) of an AQL
    text, ignoring comments and string literals."""
    values, collections = set(), set()
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token.startswith("@@"):
            collections.add(token[2:])
        elif token.startswith("@"):
            values.add(token[1:])
    return frozenset(values), frozenset(collections)


@dataclass(frozen=True)
class Query:
    """One AQL statement and the parameters it declares."""

    name: str
    text: str
    values: frozenset[str] = field(init=False)
    collections: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        values, collections = parameters(self.text)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "collections", collections)

    @property
    def writes(self) -> bool:
        """Does the statement modify documents (an INSERT, UPDATE, REPLACE, REMOVE or
        UPSERT outside comments and strings)?"""
        return _WRITE.search(_TOKENS.sub(" ", self.text)) is not None

    @property
    def params(self) -> frozenset[str]:
        """Every keyword :func:`bind` expects (collection parameters without their ``@``)."""
        return self.values | self.collections


def bind(query: Query, given: Mapping[str, object]) -> dict[str, object]:
    """python-arango's ``bind_vars`` for ``query``: exactly its parameters, no more, no less
    (ArangoDB rejects both a missing and an unused bind parameter)."""
    names = set(given)
    if names != query.params:
        missing = sorted(query.params - names)
        extra = sorted(names - query.params)
        raise ValueError(f"query {query.name}: missing parameters {missing}, unused {extra}")
    return {(f"@{k}" if k in query.collections else k): v for k, v in given.items()}


QUERIES: dict[str, Query] = {}


def _q(name: str, text: str) -> Query:
    query = Query(name, text.strip())
    QUERIES[name] = query
    return query


# -- set-up and generic writes ---------------------------------------------------------------

SCHEMA = _q(
    "SCHEMA",
    """
// index: elfc_meta/primary
FOR m IN elfc_meta
  FILTER m._key == "schema"
  RETURN m.version
""",
)

PUT_SCHEMA = _q(
    "PUT_SCHEMA",
    """
// index: elfc_meta/primary
// "ignore": when two processes set up at once, the first version written stays.
INSERT { _key: "schema", version: @version } INTO elfc_meta OPTIONS { overwriteMode: "ignore" }
""",
)

INSERT = _q(
    "INSERT",
    """
// index: @@collection/primary
// A new _key, or error 1210 (unique constraint) on a duplicate.
FOR d IN @docs
  INSERT d INTO @@collection
""",
)

EXISTING = _q(
    "EXISTING",
    """
// index: @@collection/primary
// Which of @keys exist: how a transaction whose commit went unanswered is told apart.
FOR d IN @@collection
  FILTER d._key IN @keys
  RETURN d._key
""",
)

INSERT_NEW = _q(
    "INSERT_NEW",
    """
// index: @@collection/primary
// A _key that exists keeps its stored document (revisions and templates are immutable).
FOR d IN @docs
  INSERT d INTO @@collection OPTIONS { overwriteMode: "ignore" }
""",
)

BY_PREFIX = _q(
    "BY_PREFIX",
    """
// index: @@collection/primary
// A range over _key (the primary index is sorted); STARTS_WITH makes the match exact.
FOR d IN @@collection
  FILTER d._key >= @low AND d._key < @high AND STARTS_WITH(d._key, @prefix)
  SORT d._key
  LIMIT 2
  RETURN d
""",
)

# -- elves and templates -------------------------------------------------------------------

PUT_ELF = _q(
    "PUT_ELF",
    """
// index: elfc_elves/primary
INSERT @elf INTO elfc_elves OPTIONS { overwriteMode: "replace" }
""",
)

LIST_ELVES = _q(
    "LIST_ELVES",
    """
// index: elfc_elves/by_name
FOR e IN elfc_elves
  SORT e.name
  RETURN e
""",
)

GET_TEMPLATE = _q(
    "GET_TEMPLATE",
    """
// index: elfc_graphs/primary
FOR g IN elfc_graphs
  FILTER g._key == @revision
  RETURN g.template
""",
)

# -- submitting ----------------------------------------------------------------------------

NEXT_RUN_NO = _q(
    "NEXT_RUN_NO",
    """
// index: elfc_meta/primary
// Runs are numbered for FIFO claims across hosts; concurrent submissions conflict on this
// one document (error 1200) and are retried.
UPSERT { _key: "run_counter" }
  INSERT { _key: "run_counter", n: 1 }
  UPDATE { n: OLD.n + 1 } IN elfc_meta
  RETURN NEW.n
""",
)

# -- claiming --------------------------------------------------------------------------------

PROBE = _q(
    "PROBE",
    """
// index: elfc_jobs/claim, elfc_jobs/lease
// Read-only: an idle claim or poll costs two index probes and writes nothing.
LET ready = FIRST(
  FOR j IN elfc_jobs
    FILTER j.elf == @elf AND j.status == "ready" AND j.not_before <= @now
    LIMIT 1
    RETURN true
)
LET expired = FIRST(
  FOR j IN elfc_jobs
    FILTER j.status == "running" AND j.lease_until < @now
    LIMIT 1
    RETURN true
)
RETURN { ready: ready == true, expired: expired == true }
""",
)

CLAIM = _q(
    "CLAIM",
    """
// index: elfc_jobs/claim, elfc_results/by_run_key
// One statement, so one transaction: two claimers that pick the same job conflict (1200).
// @skip > 0 only when retrying after a conflict, so that the losers of a race for the FIFO
// head spread over the next jobs instead of queueing on the same document again. The
// results the job reads come with it (one round trip per claim, not one per job).
FOR j IN elfc_jobs
  FILTER j.elf == @elf AND j.status == "ready" AND j.not_before <= @now
  SORT j.run_no, j.seq
  LIMIT @skip, @limit
  UPDATE j WITH {
    status: "running",
    attempts: j.attempts + 1,
    lease_owner: @worker,
    lease: @lease,
    lease_until: @now + @lease,
    started: @now,
    history: PUSH(j.history, [@now, "running", @worker])
  } IN elfc_jobs OPTIONS { ignoreRevs: false }
  RETURN {
    id: j._key, run: j.run, run_no: j.run_no, seq: j.seq, key: j.key, task: j.task,
    revision: j.revision, args: j.args, kwargs: j.kwargs, deps: j.deps,
    attempts: j.attempts + 1, reuse: j.reuse == true,
    results: (
      FOR r IN elfc_results FILTER r.run == j.run AND r.key IN j.deps RETURN [r.key, r.value]
    )
  }
""",
)

CLAIMED = _q(
    "CLAIMED",
    """
// index: elfc_jobs/lease, elfc_results/by_run_key
// Read-only: the jobs a CLAIM whose answer was lost did claim. Its lease_until (@now +
// @lease, computed by the server as CLAIM computed it) and owner identify them.
FOR j IN elfc_jobs
  FILTER j.status == "running" AND j.lease_until == @now + @lease
  FILTER j.lease_owner == @worker AND j.started == @now
  RETURN {
    id: j._key, run: j.run, run_no: j.run_no, seq: j.seq, key: j.key, task: j.task,
    revision: j.revision, args: j.args, kwargs: j.kwargs, deps: j.deps,
    attempts: j.attempts, reuse: j.reuse == true,
    results: (
      FOR r IN elfc_results FILTER r.run == j.run AND r.key IN j.deps RETURN [r.key, r.value]
    )
  }
""",
)

EXPIRED = _q(
    "EXPIRED",
    """
// index: elfc_jobs/lease, elfc_runs/primary, elfc_job_failures/edge
// Read-only, inside the expiry transaction: each running job whose lease ended, with what
// common.lost_leases needs (its attempts, and its recorded failures: edges from the job,
// counted through the edge index on _from with COLLECT WITH COUNT INTO; see "Counting in
// AQL", https://docs.arango.ai/docs/stable/aql/examples-counting.html). Python decides which
// are failed (WorkerLost) and which go back to ready; EXPIRE and FAIL then write them.
FOR j IN elfc_jobs
  FILTER j.status == "running" AND j.lease_until < @cutoff
  LET run_status = FIRST(FOR r IN elfc_runs FILTER r._key == j.run RETURN r.status)
  LET failures = FIRST(
    FOR f IN elfc_job_failures
      FILTER f._from == j._id
      COLLECT WITH COUNT INTO n
      RETURN n
  )
  RETURN {
    id: j._key, run: j.run, key: j.key, elf: j.elf, task: j.task, revision: j.revision,
    attempts: j.attempts, dependents: j.dependents, lease_owner: j.lease_owner,
    cancelled: run_status == "cancelled", failures: failures
  }
""",
)

EXPIRE = _q(
    "EXPIRE",
    """
// index: elfc_jobs/primary, elfc_runs/primary
// The jobs of @jobs (read by EXPIRED in the same stream transaction) back to ready, or to
// cancelled when their run was cancelled. The filter is EXPIRED's again, and the UPDATE
// passes the document with ignoreRevs: false, so a job another transaction changed since is
// a write-write conflict (1200) and the whole expiry is retried.
FOR j IN elfc_jobs
  FILTER j._key IN @jobs AND j.status == "running" AND j.lease_until < @cutoff
  LET run_status = FIRST(FOR r IN elfc_runs FILTER r._key == j.run RETURN r.status)
  LET status = run_status == "cancelled" ? "cancelled" : "ready"
  UPDATE j WITH {
    status: status,
    lease_until: null,
    finished: status == "cancelled" ? @now : null,
    history: PUSH(j.history, [@now, status, CONCAT("lease of ", j.lease_owner, " expired")])
  } IN elfc_jobs OPTIONS { ignoreRevs: false }
  RETURN { run: j.run, status: status }
""",
)

GET_RESULTS = _q(
    "GET_RESULTS",
    """
// index: elfc_results/by_run_key
FOR r IN elfc_results
  FILTER r.run == @run AND r.key IN @keys
  RETURN [r.key, r.value]
""",
)

# -- completing ------------------------------------------------------------------------------

COMPLETE = _q(
    "COMPLETE",
    """
// index: elfc_jobs/primary
// @keys: job id -> its cache key; @notes: job id -> the history note of a job that reused
// another's result, @reused: job id -> that job (both objects empty when none).
FOR id IN @jobs
  FOR j IN elfc_jobs
    FILTER j._key == id AND j.status == "running" AND j.lease_owner == @worker
    UPDATE j WITH {
      status: "succeeded",
      finished: @now,
      lease_until: null,
      history: PUSH(j.history, [@now, "succeeded", NOT_NULL(@notes[id], @worker)]),
      cache_key: @keys[id],
      cached_from: @reused[id]
    } IN elfc_jobs OPTIONS { ignoreRevs: false }
    RETURN { id: j._key, run: j.run, key: j.key, dependents: j.dependents }
""",
)

CACHED_RESULT = _q(
    "CACHED_RESULT",
    """
// index: elfc_jobs/by_cache_key, elfc_results/primary
// The latest succeeded job of a cache key, and its result.
FOR j IN elfc_jobs
  FILTER j.cache_key == @key AND j.status == "succeeded"
  SORT j.finished DESC
  LIMIT 1
  FOR r IN elfc_results
    FILTER r._key == j._key
    RETURN [j._key, r.value]
""",
)

RUN_CACHED = _q(
    "RUN_CACHED",
    """
// index: elfc_jobs/by_run
// How many jobs of the run reused a result (a filter on the run's job documents).
FOR j IN elfc_jobs
  FILTER j.run == @run AND j.cached_from != null
  COLLECT WITH COUNT INTO n
  RETURN n
""",
)

READY_DEPENDENTS = _q(
    "READY_DEPENDENTS",
    """
// index: elfc_deps/edge, elfc_jobs/primary
// Readiness is a counter per job: no job of the run is scanned.
FOR e IN elfc_deps
  FILTER e._from IN @done
  COLLECT target = e._to WITH COUNT INTO k
  FOR j IN elfc_jobs
    FILTER j._id == target
    LET ready = j.status == "pending" AND j.waiting == k
    UPDATE j WITH {
      waiting: j.waiting - k,
      status: ready ? "ready" : j.status,
      history: ready ? PUSH(j.history, [@now, "ready", ""]) : j.history
    } IN elfc_jobs OPTIONS { ignoreRevs: false }
    RETURN { elf: j.elf, ready: ready }
""",
)

SETTLE = _q(
    "SETTLE",
    """
// index: elfc_runs/primary, elfc_jobs/by_run
// Run after the transaction that finished jobs has committed, so that of two concurrent
// transactions finishing a run's last jobs, the later one's check sees both.
FOR r IN elfc_runs
  FILTER r._key IN @runs AND r.finished == null
  LET active = FIRST(
    FOR j IN elfc_jobs
      FILTER j.run == r._key AND j.status IN ["pending", "ready", "running"]
      LIMIT 1
      RETURN true
  )
  FILTER active == null
  LET failed = FIRST(
    FOR j IN elfc_jobs
      FILTER j.run == r._key AND j.status == "failed"
      LIMIT 1
      RETURN true
  )
  UPDATE r WITH {
    finished: @now,
    status: r.status != "running" ? r.status : (failed == true ? "failed" : "succeeded")
  } IN elfc_runs OPTIONS { ignoreRevs: false }
  RETURN r._key
""",
)

# -- expanding regions -----------------------------------------------------------------------
# One stream transaction: EXPANDING, EXPAND_RUN, EXTERNAL, INSERT (jobs, edges, run roots),
# ADD_DEPENDENTS, EXPAND_JOB, then a result (INSERT, READY_DEPENDENTS) or, for a join that
# can never run, SKIP_DEPENDENTS.

EXPANDING = _q(
    "EXPANDING",
    """
// index: elfc_jobs/primary, elfc_runs/primary
// Read-only: the expansion job, if @worker holds it, with its run's status.
FOR j IN elfc_jobs
  FILTER j._key == @job AND j.status == "running" AND j.lease_owner == @worker
  LET run_status = FIRST(FOR r IN elfc_runs FILTER r._key == j.run RETURN r.status)
  RETURN {
    id: j._key, run: j.run, run_no: j.run_no, key: j.key, elf: j.elf, task: j.task,
    attempts: j.attempts, dependents: j.dependents, run_status: run_status,
    reuse: j.reuse == true
  }
""",
)

EXPAND_RUN = _q(
    "EXPAND_RUN",
    """
// index: elfc_runs/primary, elfc_jobs/by_run
// A running run grows by @added jobs, numbered from the seq returned (nothing returned: the
// run is not running). The next seq is kept on the run from its first expansion on (before
// that, its jobs are read once). Writing the run orders two expansions of one run: the
// second conflicts (1200) and is retried.
FOR r IN elfc_runs
  FILTER r._key == @run AND r.status == "running"
  LET first = r.next_seq != null ? r.next_seq
    : MAX(FOR j IN elfc_jobs FILTER j.run == r._key RETURN j.seq) + 1
  UPDATE r WITH { total: r.total + @added, next_seq: first + @added } IN elfc_runs
    OPTIONS { ignoreRevs: false }
  RETURN first
""",
)

EXTERNAL = _q(
    "EXTERNAL",
    """
// index: elfc_jobs/by_run_key
// Read-only: the jobs of the run the new jobs (or the join) wait for, with their status.
FOR j IN elfc_jobs
  FILTER j.run == @run AND j.key IN @keys
  RETURN { id: j._key, key: j.key, status: j.status }
""",
)

ADD_DEPENDENTS = _q(
    "ADD_DEPENDENTS",
    """
// index: elfc_jobs/primary
// Each unfinished job the new jobs wait for counts them as dependents. Written with
// ignoreRevs: false, so a job that another transaction completed, failed or requeued since
// EXTERNAL read it is a write-write conflict (1200) and the expansion is retried: a new job
// never waits for a completion that did not see its edge.
FOR d IN @counts
  FOR j IN elfc_jobs
    FILTER j._key == d.id
    UPDATE j WITH { dependents: j.dependents + d.n } IN elfc_jobs OPTIONS { ignoreRevs: false }
""",
)

EXPAND_JOB = _q(
    "EXPAND_JOB",
    """
// index: elfc_jobs/primary
// The expansion job succeeds (@task, @args, @kwargs, @deps null: kept), or becomes its
// region's join: task "@join", the join expression as its arguments, waiting for @deps.
FOR j IN elfc_jobs
  FILTER j._key == @job AND j.status == "running" AND j.lease_owner == @worker
  UPDATE j WITH {
    task: @task == null ? j.task : @task,
    args: @args == null ? j.args : @args,
    kwargs: @kwargs == null ? j.kwargs : @kwargs,
    deps: @deps == null ? j.deps : @deps,
    status: @status,
    waiting: @waiting,
    lease_until: null,
    finished: @status IN ["succeeded", "skipped"] ? @now : null,
    history: PUSH(j.history, [@now, @status, @note])
  } IN elfc_jobs OPTIONS { ignoreRevs: false }
  RETURN j._key
""",
)

# -- failing, releasing, heartbeats, cancelling -----------------------------------------------

HELD = _q(
    "HELD",
    """
// index: elfc_jobs/primary
FOR j IN elfc_jobs
  FILTER j._key == @job AND j.status == "running" AND j.lease_owner == @worker
  RETURN {
    id: j._key, run: j.run, key: j.key, elf: j.elf, task: j.task, attempts: j.attempts,
    dependents: j.dependents
  }
""",
)

RECORD_FAILURE = _q(
    "RECORD_FAILURE",
    """
// index: elfc_failures/primary
// Deduplicated by the hash of type, message and traceback (the _key).
UPSERT { _key: @hash }
  INSERT {
    _key: @hash, error_type: @error_type, message: @message, traceback: @traceback,
    count: 1, first_seen: @now, last_seen: @now, elf: @elf, task: @task, revision: @revision
  }
  UPDATE { count: OLD.count + 1, last_seen: @now, revision: @revision } IN elfc_failures
""",
)

FAIL = _q(
    "FAIL",
    """
// index: elfc_jobs/primary
FOR j IN elfc_jobs
  FILTER j._key == @job AND j.status == "running" AND j.lease_owner == @worker
  UPDATE j WITH {
    status: "failed",
    finished: @now,
    lease_until: null,
    failure: @failure,
    history: PUSH(j.history, [@now, "failed", @note])
  } IN elfc_jobs OPTIONS { ignoreRevs: false }
  RETURN j.run
""",
)

SKIP_DEPENDENTS = _q(
    "SKIP_DEPENDENTS",
    """
// index: elfc_deps/edge, elfc_jobs/primary
// Every transitive dependent of @start, breadth first, each visited once, up to the jobs of
// `try` statements (task @catch), which are neither skipped nor passed: for each of those,
// @start and every job skipped now have settled, so its waiting counter drops by its edges
// from them (READY_DEPENDENTS' rule: ready at 0). One UPDATE writes both, after every read
// (a query modifies a collection once, and never reads it after).
WITH elfc_jobs
LET skipped = (
  FOR v IN 1..1000000000 OUTBOUND @start elfc_deps
    PRUNE v._id != @start AND v.task == @catch
    OPTIONS { order: "bfs", uniqueVertices: "global" }
    FILTER v.task != @catch AND v.status == "pending"
    RETURN v
)
LET catchers = (
  FOR e IN elfc_deps
    FILTER e._from IN APPEND([@start], skipped[*]._id)
    COLLECT target = e._to WITH COUNT INTO k
    FOR j IN elfc_jobs
      FILTER j._id == target AND j.task == @catch
      RETURN { job: j, k: k }
)
FOR x IN APPEND((FOR v IN skipped RETURN { job: v, k: 0 }), catchers)
  LET j = x.job
  LET ready = x.k > 0 AND j.status == "pending" AND j.waiting == x.k
  UPDATE j WITH (x.k == 0 ? {
    status: "skipped",
    finished: @now,
    history: PUSH(j.history, [@now, "skipped", @note])
  } : {
    waiting: j.waiting - x.k,
    status: ready ? "ready" : j.status,
    history: ready ? PUSH(j.history, [@now, "ready", ""]) : j.history
  }) IN elfc_jobs OPTIONS { ignoreRevs: false }
  RETURN j.run
""",
)

PUT_RESULTS = _q(
    "PUT_RESULTS",
    """
// index: elfc_results/primary
// A failed job's exception (what a `try` statement's handler reads), keyed by the job's id:
// it replaces a result stored before.
FOR d IN @docs
  INSERT d INTO elfc_results OPTIONS { overwriteMode: "replace" }
""",
)

HANDLE = _q(
    "HANDLE",
    """
// index: elfc_jobs/by_run
// In an expansion's transaction: the failed jobs of the run that a `try` statement's handler
// took (those of @keys, and those of their expansions: keys below "key/") become handled.
// Failed jobs are final: only a retry, which needs the run settled, writes them too.
FOR j IN elfc_jobs
  FILTER j.run == @run AND j.status == "failed"
  FILTER j.key IN @keys
    OR FIRST(FOR k IN @keys FILTER STARTS_WITH(j.key, CONCAT(k, "/")) LIMIT 1 RETURN true)
  UPDATE j WITH {
    status: "handled",
    history: PUSH(j.history, [@now, "handled", @note])
  } IN elfc_jobs OPTIONS { ignoreRevs: false }
  RETURN j._key
""",
)

HANDLED_RESULTS = _q(
    "HANDLED_RESULTS",
    """
// index: elfc_results/primary
// The stored exception of each job HANDLE marked becomes @value (a failure no longer).
FOR r IN elfc_results
  FILTER r._key IN @jobs
  UPDATE r WITH { value: @value } IN elfc_results
""",
)

REQUEUE = _q(
    "REQUEUE",
    """
// index: elfc_jobs/primary, elfc_runs/primary
// Back to ready (a retry or a release), or cancelled when the run was cancelled meanwhile.
FOR j IN elfc_jobs
  FILTER j._key IN @jobs AND j.status == "running" AND j.lease_owner == @worker
  LET run_status = FIRST(FOR r IN elfc_runs FILTER r._key == j.run RETURN r.status)
  LET status = run_status == "cancelled" ? "cancelled" : "ready"
  UPDATE j WITH {
    status: status,
    attempts: j.attempts + @attempts,
    not_before: @not_before == null ? j.not_before : @not_before,
    failure: @failure == null ? j.failure : @failure,
    lease_until: null,
    finished: status == "cancelled" ? @now : null,
    history: PUSH(j.history, [@now, status, @note])
  } IN elfc_jobs OPTIONS { ignoreRevs: false }
  RETURN { run: j.run, status: status }
""",
)

BEAT = _q(
    "BEAT",
    """
// index: elfc_workers/primary
UPSERT { _key: @key }
  INSERT {
    _key: @key, id: @id, elf: @elf, host: @host, pid: @pid, started: @started, heartbeat: @now
  }
  UPDATE { elf: @elf, host: @host, pid: @pid, heartbeat: @now } IN elfc_workers
""",
)

EXTEND_LEASES = _q(
    "EXTEND_LEASES",
    """
// index: elfc_jobs/primary, elfc_runs/primary
FOR j IN elfc_jobs
  FILTER j._key IN @jobs AND j.status == "running" AND j.lease_owner == @worker
  LET run_status = FIRST(FOR r IN elfc_runs FILTER r._key == j.run RETURN r.status)
  UPDATE j WITH { lease_until: @now + j.lease } IN elfc_jobs OPTIONS { ignoreRevs: false }
  RETURN { id: j._key, cancelled: run_status == "cancelled" }
""",
)

CANCEL_RUN = _q(
    "CANCEL_RUN",
    """
// index: elfc_runs/primary
FOR r IN elfc_runs
  FILTER r._key == @run AND r.status == "running"
  UPDATE r WITH { status: "cancelled" } IN elfc_runs OPTIONS { ignoreRevs: false }
  RETURN r._key
""",
)

FAIL_RUN = _q(
    "FAIL_RUN",
    """
// index: elfc_runs/primary
FOR r IN elfc_runs
  FILTER r._key == @run AND r.status == "succeeded"
  UPDATE r WITH { status: "failed", failure: @failure } IN elfc_runs OPTIONS { ignoreRevs: false }
  RETURN r._key
""",
)

CANCEL_JOBS = _q(
    "CANCEL_JOBS",
    """
// index: elfc_jobs/by_run
// Pending and ready jobs are cancelled. Running ones keep running (their worker learns of
// the cancel from its heartbeat) but are written too: EXPIRE and REQUEUE read the run's
// status and write a running job, and under snapshot isolation two transactions conflict
// only on a document both write. Without this write, an expiry that read "running" and a
// cancel would both commit, leaving a ready job in a cancelled run.
FOR j IN elfc_jobs
  FILTER j.run == @run AND j.status IN ["pending", "ready", "running"]
  UPDATE j WITH (j.status == "running" ? { run_cancelled: @now } : {
    status: "cancelled",
    finished: @now,
    history: PUSH(j.history, [@now, "cancelled", "run cancelled"])
  }) IN elfc_jobs OPTIONS { ignoreRevs: false }
""",
)

RERUNNABLE = frozenset(
    {
        "PUT_SCHEMA",  # overwriteMode "ignore": a second insert keeps the first
        "INSERT_NEW",  # likewise
        "PUT_ELF",  # a replace by the same document
        "NEXT_RUN_NO",  # a run number skipped: numbers only order runs, gaps are fine
        "REQUEUE",  # filters on running + the lease owner: likewise
        "BEAT",  # an upsert of the same heartbeat
        "EXTEND_LEASES",  # sets lease_until again
        "SETTLE",  # filters on finished == null
        "FAIL_RUN",  # filters on succeeded: a second one finds the run failed, changes nothing
    }
)
"""The writing statements that may run again when the answer to one run outside a stream
transaction was lost: each re-reads what it changes, so running it twice changes nothing
more than running it once. Every other write outside a transaction (CLAIM) is resolved by
reading (CLAIMED); writes inside one are resolved by the transaction's status."""

# -- reading ---------------------------------------------------------------------------------

RUN_STATUS = _q(
    "RUN_STATUS",
    """
// index: elfc_runs/primary, elfc_jobs/by_run
// idle: no active job left but not settled (its last writer died before settling it).
FOR r IN elfc_runs
  FILTER r._key == @run
  LET active = FIRST(
    FOR j IN elfc_jobs
      FILTER j.run == r._key AND j.status IN ["pending", "ready", "running"]
      LIMIT 1
      RETURN true
  )
  RETURN { status: r.status, idle: r.finished == null AND active == null }
""",
)

RUN_COUNTS = _q(
    "RUN_COUNTS",
    """
// index: elfc_jobs/by_run
// Covered by the index (elf is a stored value): no job document is read.
FOR j IN elfc_jobs
  FILTER j.run == @run
  COLLECT elf = j.elf, status = j.status WITH COUNT INTO n
  RETURN [elf, status, n]
""",
)

LIST_RUNS = _q(
    "LIST_RUNS",
    """
// index: elfc_runs/by_no, elfc_jobs/by_run
FOR r IN elfc_runs
  SORT r.no DESC
  LIMIT @limit
  LET counts = (
    FOR j IN elfc_jobs
      FILTER j.run == r._key
      COLLECT elf = j.elf, status = j.status WITH COUNT INTO n
      RETURN [elf, status, n]
  )
  LET cached = LENGTH(
    FOR j IN elfc_jobs FILTER j.run == r._key AND j.cached_from != null RETURN 1
  )
  RETURN MERGE(r, { counts: counts, cached: cached })
""",
)

LIST_JOBS = _q(
    "LIST_JOBS",
    """
// index: elfc_jobs/by_run, elfc_failures/primary
// Sorted by seq in memory: the run's jobs only, which the listing returns anyway.
LET jobs = (
  FOR j IN elfc_jobs
    FILTER j.run == @run
    SORT j.seq
    RETURN j
)
LET failures = (FOR f IN elfc_failures FILTER f._key IN UNIQUE(jobs[*].failure) RETURN f)
RETURN { jobs: jobs, failures: failures }
""",
)

LIST_JOBS_WITH_STATUS = _q(
    "LIST_JOBS_WITH_STATUS",
    """
// index: elfc_jobs/by_run, elfc_failures/primary
LET jobs = (
  FOR j IN elfc_jobs
    FILTER j.run == @run AND j.status == @status
    SORT j.seq
    RETURN j
)
LET failures = (FOR f IN elfc_failures FILTER f._key IN UNIQUE(jobs[*].failure) RETURN f)
RETURN { jobs: jobs, failures: failures }
""",
)

JOB_EXTRAS = _q(
    "JOB_EXTRAS",
    """
// index: elfc_results/primary, elfc_failures/primary
RETURN {
  result: FIRST(FOR r IN elfc_results FILTER r._key == @job RETURN r.value),
  failure: FIRST(FOR f IN elfc_failures FILTER f._key == @failure RETURN f)
}
""",
)

LIST_FAILURES = _q(
    "LIST_FAILURES",
    """
// index: elfc_failures/by_last_seen
FOR f IN elfc_failures
  SORT f.last_seen DESC
  LIMIT @limit
  RETURN f
""",
)

LIST_WORKERS = _q(
    "LIST_WORKERS",
    """
// index: elfc_workers/by_heartbeat
FOR w IN elfc_workers
  SORT w.heartbeat DESC
  RETURN w
""",
)


# -- operating runs: task output, retries -------------------------------------------------------

UPGRADE_SCHEMA = _q(
    "UPGRADE_SCHEMA",
    """
// index: elfc_meta/primary
FOR m IN elfc_meta
  FILTER m._key == "schema" AND m.version < @version
  UPDATE m WITH { version: @version } IN elfc_meta
""",
)

JOBS_FOR_LOGS = _q(
    "JOBS_FOR_LOGS",
    """
// index: elfc_jobs/primary
FOR j IN elfc_jobs
  FILTER j._key IN @jobs
  RETURN { id: j._key, run: j.run, seq: j.seq }
""",
)

PUT_LOGS = _q(
    "PUT_LOGS",
    """
// index: elfc_logs/primary
// Appended: each document has a new random _key.
FOR d IN @docs
  INSERT d INTO elfc_logs
""",
)

LIST_LOGS = _q(
    "LIST_LOGS",
    """
// index: elfc_logs/by_run
FOR l IN elfc_logs
  FILTER l.run == @run AND l.time >= @since AND (@key == null OR l.key == @key)
  SORT l.time, l.seq, l.attempt, l.n
  RETURN l
""",
)

RETRY_RUN = _q(
    "RETRY_RUN",
    """
// index: elfc_runs/primary
FOR r IN elfc_runs
  FILTER r._key == @run AND r.status IN ["succeeded", "failed", "cancelled"]
  UPDATE r WITH { status: "running", finished: null, failure: null } IN elfc_runs
    OPTIONS { ignoreRevs: false, keepNull: false }
  RETURN r._key
""",
)

RESET_JOBS = _q(
    "RESET_JOBS",
    """
// index: elfc_jobs/primary
// Every named job pending first: COUNT_WAITING then sees which dependencies run again.
FOR j IN elfc_jobs
  FILTER j._key IN @jobs AND j.run == @run
    AND j.status IN ["succeeded", "failed", "skipped", "cancelled", "not_taken", "handled"]
  UPDATE j WITH {
    status: "pending",
    revision: @revisions[j._key],
    attempts: 0,
    not_before: 0,
    lease_owner: null,
    lease_until: null,
    started: null,
    finished: null,
    cache_key: null,
    cached_from: null
  } IN elfc_jobs OPTIONS { ignoreRevs: false }
  RETURN { id: j._key, old: j.revision }
""",
)

DELETE_RESULTS = _q(
    "DELETE_RESULTS",
    """
// index: elfc_results/primary
FOR r IN elfc_results
  FILTER r._key IN @jobs
  REMOVE r IN elfc_results
""",
)

COUNT_WAITING = _q(
    "COUNT_WAITING",
    """
// index: elfc_deps/edge, elfc_jobs/primary
// Read-only, after RESET_JOBS in the same transaction (a query may not read what it wrote).
FOR id IN @jobs
  LET waiting = LENGTH(
    FOR d IN 1..1 INBOUND CONCAT("elfc_jobs/", id) elfc_deps
      FILTER d.status != "succeeded"
      RETURN 1
  )
  RETURN { id: id, waiting: waiting }
""",
)

REREADY = _q(
    "REREADY",
    """
// index: elfc_jobs/primary
FOR w IN @waiting
  FOR j IN elfc_jobs
    FILTER j._key == w.id
    LET status = w.waiting == 0 ? "ready" : "pending"
    UPDATE j WITH {
      waiting: w.waiting,
      status: status,
      history: PUSH(j.history, [@now, status, w.note])
    } IN elfc_jobs OPTIONS { ignoreRevs: false }
    RETURN j.elf
""",
)

# -- retention: prune_runs ------------------------------------------------------------------------

PRUNE_PICK = _q(
    "PRUNE_PICK",
    """
// index: elfc_runs/by_no
FOR r IN elfc_runs
  SORT r.no
  FILTER r.finished != null AND r.finished < @before AND r.status IN @statuses
  LIMIT @limit
  RETURN { id: r._key, revision: r.revision }
""",
)

PRUNE_JOBS_OF = _q(
    "PRUNE_JOBS_OF",
    """
// index: elfc_jobs/by_run, elfc_job_failures/edge
LET jobs = (FOR j IN elfc_jobs FILTER j.run IN @runs RETURN { id: j._id, revision: j.revision })
LET failures = (FOR e IN elfc_job_failures FILTER e._from IN jobs[*].id RETURN DISTINCT e._to)
RETURN { jobs: jobs[*].id, revisions: UNIQUE(jobs[*].revision), failures: failures }
""",
)

PRUNE_DEPS = _q(
    "PRUNE_DEPS",
    """
// index: elfc_deps/edge
FOR e IN elfc_deps
  FILTER e._from IN @jobs OR e._to IN @jobs
  REMOVE e IN elfc_deps
""",
)

PRUNE_JOB_FAILURES = _q(
    "PRUNE_JOB_FAILURES",
    """
// index: elfc_job_failures/edge
FOR e IN elfc_job_failures
  FILTER e._from IN @jobs
  REMOVE e IN elfc_job_failures
""",
)

PRUNE_RUN_ROOTS = _q(
    "PRUNE_RUN_ROOTS",
    """
// index: elfc_run_roots/edge
FOR e IN elfc_run_roots
  FILTER e._from IN @runs
  REMOVE e IN elfc_run_roots
""",
)

PRUNE_RESULTS = _q(
    "PRUNE_RESULTS",
    """
// index: elfc_results/by_run_key
FOR r IN elfc_results
  FILTER r.run IN @runs
  REMOVE r IN elfc_results
""",
)

PRUNE_LOGS = _q(
    "PRUNE_LOGS",
    """
// index: elfc_logs/by_run
FOR l IN elfc_logs
  FILTER l.run IN @runs
  REMOVE l IN elfc_logs
""",
)

PRUNE_JOBS = _q(
    "PRUNE_JOBS",
    """
// index: elfc_jobs/by_run
FOR j IN elfc_jobs
  FILTER j.run IN @runs
  REMOVE j IN elfc_jobs
""",
)

PRUNE_RUNS = _q(
    "PRUNE_RUNS",
    """
// index: elfc_runs/primary
FOR r IN elfc_runs
  FILTER r._key IN @runs
  REMOVE r IN elfc_runs
""",
)

PRUNE_FAILURES = _q(
    "PRUNE_FAILURES",
    """
// index: elfc_failures/primary, elfc_job_failures/edge
// Only failures no remaining job links to (the links of the pruned jobs are gone already).
FOR f IN elfc_failures
  FILTER f._id IN @failures
  LET used = FIRST(FOR e IN elfc_job_failures FILTER e._to == f._id LIMIT 1 RETURN true)
  FILTER used == null
  REMOVE f IN elfc_failures
""",
)

PRUNE_TEMPLATES = _q(
    "PRUNE_TEMPLATES",
    """
// index: elfc_graphs/primary, elfc_runs/primary
// The runs are read by a scan: a template's revision is not indexed on runs.
FOR g IN elfc_graphs
  FILTER g._key IN @revisions
  LET used = FIRST(FOR r IN elfc_runs FILTER r.revision == g._key LIMIT 1 RETURN true)
  FILTER used == null
  REMOVE g IN elfc_graphs
  RETURN OLD._key
""",
)

PRUNE_TEMPLATE_NODES = _q(
    "PRUNE_TEMPLATE_NODES",
    """
// index: elfc_template_nodes/primary
// Keys of a template's vertices and edges start with "<revision>-".
FOR rev IN @revisions
  FOR n IN elfc_template_nodes
    FILTER STARTS_WITH(n._key, CONCAT(rev, "-"))
    REMOVE n IN elfc_template_nodes
""",
)

PRUNE_TEMPLATE_EDGES = _q(
    "PRUNE_TEMPLATE_EDGES",
    """
// index: elfc_template_edges/primary
FOR rev IN @revisions
  FOR e IN elfc_template_edges
    FILTER STARTS_WITH(e._key, CONCAT(rev, "-"))
    REMOVE e IN elfc_template_edges
""",
)

PRUNE_TEMPLATE_ROOTS = _q(
    "PRUNE_TEMPLATE_ROOTS",
    """
// index: elfc_template_roots/primary
FOR rev IN @revisions
  FOR e IN elfc_template_roots
    FILTER STARTS_WITH(e._key, CONCAT(rev, "-"))
    REMOVE e IN elfc_template_roots
""",
)

PRUNE_REVISIONS = _q(
    "PRUNE_REVISIONS",
    """
// index: elfc_revisions/primary, elfc_runs/primary, elfc_elves/by_name
// Jobs, runs and elves are read by a scan: revisions are not indexed on them.
FOR v IN elfc_revisions
  FILTER v._key IN @revisions AND v.kind IN ["task", "pipeline"]
  LET job = FIRST(FOR j IN elfc_jobs FILTER j.revision == v._key LIMIT 1 RETURN true)
  LET run = FIRST(FOR r IN elfc_runs FILTER r.revision == v._key LIMIT 1 RETURN true)
  LET elf = FIRST(FOR e IN elfc_elves FILTER e.revision == v._key LIMIT 1 RETURN true)
  FILTER job == null AND run == null AND elf == null
  REMOVE v IN elfc_revisions
""",
)
