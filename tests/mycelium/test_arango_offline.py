"""The ArangoDB mycelium without a server: URLs, secrets, the install hint, bounded failure,
the AQL module's discipline, and the python-arango stubs against the installed package."""

from __future__ import annotations

import ast
import importlib
import importlib.abc
import inspect
import logging
import re
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

import msgspec
import pytest

from elfc.errors import MyceliumError
from elfc.model.ir import JOIN, JobSpec
from elfc.model.status import FINAL_JOB_STATUSES
from elfc.mycelium import arango as backend
from elfc.mycelium.arango import INSTALL_HINT, ArangoStore, _template_docs, aql
from elfc.mycelium.arango.url import PASSWORD_ENV, parse_url
from elfc.mycelium.common import Expansion
from elfc.mycelium.common import prefix_end as _after
from elfc.mycelium.urls import mask_url, open_mycelium, split_password

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-Pa55"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- URLs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "endpoints", "user", "database"),
    [
        ("arango://localhost", ("http://localhost:8529",), "root", "elfc"),
        ("arango://bob@db.example:8530/census", ("http://db.example:8530",), "bob", "census"),
        (
            "arango://u@h1:8529,h2,[::1]:9000/db",
            ("http://h1:8529", "http://h2:8529", "http://[::1]:9000"),
            "u",
            "db",
        ),
        ("arangos://u@h/db?ca=/etc/ca.pem", ("https://h:8529",), "u", "db"),
        ("arango://a%40b@h/my%2Ddb/", ("http://h:8529",), "a@b", "my-db"),
    ],
)
def test_urls_parse(url: str, endpoints: tuple[str, ...], user: str, database: str) -> None:
    target = parse_url(url, environ={})
    assert (target.endpoints, target.username, target.database) == (endpoints, user, database)
    assert target.tls == url.startswith("arangos://")


def test_tls_options() -> None:
    target = parse_url("arangos://u@h/db?ca=/etc/ca.pem&timeout=7&connect_timeout=0.5", environ={})
    assert target.ca == "/etc/ca.pem" and target.timeout == 7 and target.connect_timeout == 0.5
    assert parse_url(target.masked, environ={}) == target  # the masked form of a URL re-parses


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("http://h/db", "not an ArangoDB"),
        ("arango://u@/db", "bad host"),
        ("arango://h:99999/db", "bad port"),
        ("arango://h:port/db", "bad host"),
        ("arango://h/db?bogus=1", "unknown option"),
        ("arango://h/db?ca=/etc/ca.pem", "arangos://"),
        ("arango://h/db?timeout=0", "seconds > 0"),
        ("arango://h/a/b", "bad database"),
    ],
)
def test_bad_urls_are_refused(url: str, complaint: str) -> None:
    with pytest.raises(MyceliumError, match=complaint):
        parse_url(url, environ={})


def test_the_password_comes_from_the_url_else_the_environment() -> None:
    env = {PASSWORD_ENV: "from-env"}
    assert parse_url("arango://u:p%40ss%2Fw@h/db", environ=env).password == "p@ss/w"
    assert parse_url("arango://u@h/db", environ=env).password == "from-env"
    assert parse_url("arango://u@h/db", environ={}).password == ""


def test_the_password_is_never_shown() -> None:
    target = parse_url(f"arango://u:{SECRET}@h1,h2:8530/db", environ={})
    assert target.password == SECRET
    for shown in (target.masked, str(target), repr(target)):
        assert SECRET not in shown
    assert target.masked == "arango://u:***@h1:8529,h2:8530/db"
    from_env = parse_url("arango://u@h/db", environ={PASSWORD_ENV: SECRET})
    assert SECRET not in repr(from_env) and ":***" not in from_env.masked
    with pytest.raises(MyceliumError) as caught:
        parse_url(f"arango://u:{SECRET}@h:notaport/db", environ={})
    assert SECRET not in str(caught.value) and "u:***@" in str(caught.value)


@pytest.mark.parametrize("password", ["Pa/ss-w0rd", "Pa?ss-w0rd", "Pa/ss?w0rd@x", "Pa#ss:w0rd"])
def test_a_password_with_reserved_characters_is_never_shown(password: str) -> None:
    """Unencoded "/", "?" cut the authority short; the URL's last "@" still ends the user
    part for masking, and parsing refuses such a URL with the fix, never echoing it."""
    url = f"arango://u:{password}@h1:8529,h2/db?timeout=5"
    shown = mask_url(url)
    assert password not in shown and "Pa" not in shown and shown.startswith("arango://u:***@h1")
    bare, split = split_password(url)
    assert split == password and bare == "arango://u@h1:8529,h2/db?timeout=5"
    if "/" in password or "?" in password:
        with pytest.raises(MyceliumError, match="percent-encode") as caught:
            open_mycelium(url)
        assert "Pa" not in str(caught.value) and PASSWORD_ENV in str(caught.value)
    else:
        assert parse_url(url, environ={}).password == password
    encoded = f"arango://u:{quote(password, safe='')}@h1:8529,h2/db"
    assert parse_url(encoded, environ={}).password == password
    assert "Pa" not in mask_url(encoded)


def test_a_path_with_colon_and_at_is_no_password() -> None:
    assert mask_url("sqlite:///data/a:b@c.db") == "sqlite:///data/a:b@c.db"
    assert split_password("sqlite:///data/a:b@c.db") == ("sqlite:///data/a:b@c.db", None)


def test_the_mycelium_shows_its_url_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ArangoStore, "_database", lambda self: None)
    mycelium = ArangoStore.from_url(f"arangos://u:{SECRET}@h/db")
    assert mycelium.url == "arangos://u:***@h:8529/db"
    assert SECRET not in repr(mycelium) and "arangos://u:***@h:8529/db" in repr(mycelium)


# -- python-arango missing ----------------------------------------------------------------------


class _Blocker(importlib.abc.MetaPathFinder):
    """Makes ``arango`` (and its submodules) look uninstalled."""

    def find_spec(self, name: str, path: Any = None, target: ModuleType | None = None) -> None:
        if name == "arango" or name.startswith("arango."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


@pytest.fixture
def without_python_arango(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(sys.modules):
        if name == "arango" or name.startswith("arango."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_Blocker(), *sys.meta_path])
    backend._driver.cache_clear()
    yield
    backend._driver.cache_clear()


@pytest.mark.usefixtures("without_python_arango")
def test_without_python_arango_opening_fails_with_the_install_hint() -> None:
    with pytest.raises(MyceliumError) as caught:
        open_mycelium(f"arango://u:{SECRET}@127.0.0.1:{closed_port()}/db")
    assert INSTALL_HINT in str(caught.value) and SECRET not in str(caught.value)
    assert parse_url("arango://u@h/db").database == "db"  # parsing needs no driver


def test_import_elfc_never_imports_python_arango() -> None:
    code = (
        "import sys; sys.modules['arango'] = None\n"
        "import elfc, elfc.cli.main, elfc.mycelium.urls, elfc.mycelium.arango\n"
        "assert sys.modules['arango'] is None\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


# -- an unreachable server -----------------------------------------------------------------


@pytest.fixture
def driver() -> None:
    pytest.importorskip("arango", reason="python-arango is not installed")


@pytest.mark.usefixtures("driver")
@pytest.mark.parametrize("scheme", ["arango", "arangos"])
def test_an_unreachable_server_fails_clearly_in_bounded_time(
    scheme: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ports = closed_port(), closed_port()
    url = f"{scheme}://u:{SECRET}@127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}/db?connect_timeout=1"
    start = time.monotonic()
    with pytest.raises(MyceliumError) as caught:
        open_mycelium(url)
    assert time.monotonic() - start < 5.0
    message = str(caught.value)
    assert "cannot reach ArangoDB" in message and f"127.0.0.1:{ports[1]}" in message
    everything = "".join(traceback.format_exception(caught.value)) + caplog.text
    assert SECRET not in everything


# -- the AQL module's discipline ------------------------------------------------------------------


def test_parameters_ignore_comments_and_strings() -> None:
    text = (
        '// @not_a_param\nFOR d IN @@coll /* @nor_this */ FILTER d.a == "@x" '
        "AND d.b == '@y' AND d.c == @real RETURN `@z`"
    )
    assert aql.parameters(text) == (frozenset({"real"}), frozenset({"coll"}))


def test_bind_checks_names_both_ways() -> None:
    query = aql.BY_PREFIX
    binds = aql.bind(query, {"collection": aql.JOBS, "low": "a", "high": "b", "prefix": "a"})
    assert binds == {"@collection": aql.JOBS, "low": "a", "high": "b", "prefix": "a"}
    with pytest.raises(ValueError, match="missing"):
        aql.bind(query, {"collection": aql.JOBS})
    with pytest.raises(ValueError, match="unused"):
        aql.bind(aql.SCHEMA, {"version": 1})


def _module_tree(module: ModuleType) -> ast.Module:
    return ast.parse(Path(inspect.getfile(module)).read_text(encoding="utf-8"))


def test_every_query_is_one_constant_string() -> None:
    """No f-string, ``%`` or ``.format``: a query's text is a literal in aql.py."""
    defined = set()
    for node in ast.walk(_module_tree(aql)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "_q":
            name, text = node.args
            assert isinstance(name, ast.Constant) and isinstance(text, ast.Constant)
            assert isinstance(text.value, str)
            defined.add(name.value)
    assert defined == set(aql.QUERIES)
    for query_name, query in aql.QUERIES.items():
        assert getattr(aql, query_name) is query, f"{query_name} is not bound to its own name"


def test_every_query_names_indexes_that_exist() -> None:
    indexes = {(i.collection, i.name) for i in aql.INDEXES}
    for query in aql.QUERIES.values():
        head = query.text.splitlines()[0]
        assert head.startswith("// index: "), f"{query.name} does not name its index"
        for ref in head.removeprefix("// index: ").split(", "):
            collection, _, index = ref.partition("/")
            if collection == "@@collection":
                assert index == "primary" and "collection" in query.collections
            elif index == "edge":
                assert collection in aql.EDGE_COLLECTIONS, f"{query.name}: {ref}"
            else:
                assert collection in aql.COLLECTIONS, f"{query.name}: {ref}"
                assert index == "primary" or (collection, index) in indexes, f"{query.name}: {ref}"
            if not collection.startswith("@"):
                assert collection in query.text.split(head, 1)[1], f"{query.name}: {ref} unused"


def test_every_query_is_run_with_exactly_its_parameters() -> None:
    """Each call site in arango.py passes ``aql.NAME`` and then keywords only: exactly the
    query's parameters (ArangoDB rejects a missing and an unused one alike)."""
    used = set()
    for node in ast.walk(_module_tree(backend)):
        if not isinstance(node, ast.Call):
            continue
        for i, arg in enumerate(node.args):
            if (
                isinstance(arg, ast.Attribute)
                and isinstance(arg.value, ast.Name)
                and arg.value.id == "aql"
                and arg.attr in aql.QUERIES
            ):
                query = aql.QUERIES[arg.attr]
                where = f"{query.name} at arango.py:{node.lineno}"
                assert i == len(node.args) - 1, f"{where}: positional values"
                assert all(k.arg is not None for k in node.keywords), f"{where}: **kwargs"
                assert {k.arg for k in node.keywords} == query.params, where
                used.add(query.name)
    assert used == set(aql.QUERIES), f"never run: {set(aql.QUERIES) - used}"


def test_queries_reach_the_driver_only_as_their_text() -> None:
    calls = [
        node
        for node in ast.walk(_module_tree(backend))
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "execute"
    ]
    assert len(calls) == 1
    (call,) = calls
    assert ast.unparse(call.args[0]) == "query.text"
    assert [ast.unparse(k) for k in call.keywords if k.arg == "bind_vars"] == [
        "bind_vars=aql.bind(query, values)"
    ]


def test_prefix_ranges_cover_hex_keys() -> None:
    assert _after("ab9") == "aba" and _after("abf") == "abg" and _after("0") == "1"
    keys = [f"{n:04x}" for n in range(0, 0x10000, 7)]
    for prefix in ("a", "9", "3f", "12"):
        inside = [k for k in keys if prefix <= k < _after(prefix)]
        assert inside == [k for k in keys if k.startswith(prefix)]


def test_templates_become_vertices_and_edges() -> None:
    template = msgspec.json.encode(
        {
            "pipeline": "m:p",
            "nodes": [{"type": "input", "id": "rounds"}, {"type": "call", "id": "n1"}],
            "edges": [{"source": "rounds", "target": "n1", "label": "rounds"}],
        }
    )
    docs = _template_docs("rev1", template)
    assert docs[aql.TEMPLATES] == [{"_key": "rev1", "template": template.decode()}]
    nodes = docs[aql.TEMPLATE_NODES]
    assert [(n["id"], n["type"], n["revision"]) for n in nodes] == [
        ("rounds", "input", "rev1"),
        ("n1", "call", "rev1"),
    ]
    (edge,) = docs[aql.TEMPLATE_EDGES]
    assert edge["_from"] == f"{aql.TEMPLATE_NODES}/{nodes[0]['_key']}"
    assert edge["_to"] == f"{aql.TEMPLATE_NODES}/{nodes[1]['_key']}"
    (root,) = docs[aql.TEMPLATE_ROOTS]
    assert root["_from"] == f"{aql.TEMPLATES}/rev1" and root["_to"] == edge["_from"]
    assert _template_docs("rev1", template) == docs  # deterministic keys: storing twice is a no-op
    assert _template_docs("r", b'{"t": 2}')[aql.TEMPLATE_NODES] == []


# -- retries --------------------------------------------------------------------------------------


def _server_error(code: int, http: int = 409, message: str | None = "conflict") -> Exception:
    from arango.exceptions import ArangoServerError

    exc = ArangoServerError.__new__(ArangoServerError)
    exc.error_code, exc.http_code, exc.error_message = code, http, message
    return exc


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> ArangoStore:
    pytest.importorskip("arango", reason="python-arango is not installed")
    monkeypatch.setattr(ArangoStore, "_database", lambda self: None)
    return ArangoStore.from_url(f"arango://u:{SECRET}@h/db")


def test_write_write_conflicts_are_retried(offline: ArangoStore) -> None:
    outcomes: list[Exception | str] = [_server_error(1200), _server_error(1200), "done"]

    def attempt() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert offline._retrying(attempt, "claim") == "done" and not outcomes


def test_other_server_errors_are_not_retried_and_name_the_url_masked(
    offline: ArangoStore,
) -> None:
    calls = []

    def attempt() -> None:
        calls.append(1)
        raise _server_error(1203, 404, "collection or view not found")

    with pytest.raises(MyceliumError, match=r"ERR 1203.*not found") as caught:
        offline._retrying(attempt, "claim")
    assert calls == [1] and "u:***@h" in str(caught.value) and SECRET not in str(caught.value)


def test_conflicts_are_retried_for_a_bounded_time(
    offline: ArangoStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backend, "PATIENCE", 0.2)

    def attempt() -> None:
        raise _server_error(1200)

    start = time.monotonic()
    with pytest.raises(MyceliumError, match="still conflicting"):
        offline._retrying(attempt, "claim")
    assert time.monotonic() - start < 2.0


# -- the stubs in typings/arango agree with the installed python-arango ------------------------------


def _stub_functions() -> Iterator[tuple[str, str, ast.FunctionDef]]:
    for path in sorted((ROOT / "typings" / "arango").glob("*.pyi")):
        module = "arango" if path.stem == "__init__" else f"arango.{path.stem}"
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef):
                        yield module, f"{node.name}.{item.name}", item


@pytest.mark.usefixtures("driver")
def test_stubs_match_the_installed_python_arango() -> None:
    checked = 0
    for module_name, qualname, stub in _stub_functions():
        owner_name, _, name = qualname.partition(".")
        owner = getattr(importlib.import_module(module_name), owner_name)
        real = inspect.getattr_static(owner, name, None)
        for base in owner.__mro__ if real is None else ():
            real = base.__dict__.get(name, real)
        assert real is not None, f"{module_name}.{qualname} is not in python-arango"
        if any(getattr(d, "id", None) == "property" for d in stub.decorator_list):
            assert isinstance(real, property), f"{qualname} is not a property"
            continue
        signature = inspect.signature(getattr(owner, name))
        real_params = [p for p in signature.parameters if p != "self"]
        stub_params = [a.arg for a in stub.args.args if a.arg != "self"]
        assert stub_params == real_params[: len(stub_params)], f"{qualname}: {real_params}"
        for rest in real_params[len(stub_params) :]:
            parameter = signature.parameters[rest]
            assert parameter.default is not inspect.Parameter.empty or parameter.kind in (
                inspect.Parameter.VAR_POSITIONAL,
                inspect.Parameter.VAR_KEYWORD,
            ), f"{qualname}: the stub leaves out the required {rest!r}"
        checked += 1
    assert checked >= 20


# -- operating runs: the statements a retry, a log write and an upgrade run ------------------------


class _ScriptedTxn:
    """Stands in for a stream transaction: each query is bound as the server would bind it
    (a missing or unused parameter fails) and answers with the rows scripted for it."""

    def __init__(self, answers: dict[str, list[Any]]) -> None:
        self.answers = answers
        self.now = 1234.5
        self.settle: set[str] = set()
        self.receipt: tuple[str, list[str]] | None = None
        self.ran: list[tuple[str, dict[str, object]]] = []

    def query(self, query: aql.Query, **values: object) -> list[Any]:
        aql.bind(query, values)
        self.ran.append((query.name, values))
        return self.answers.get(query.name, [])


@pytest.fixture
def scripted(
    offline: ArangoStore, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[ArangoStore, dict[str, list[Any]], list[Any]]]:
    answers: dict[str, list[Any]] = {}
    txns: list[Any] = []

    def transaction(
        write: Any, body: Any, doing: str, read: Any = ()
    ) -> Any:  # as _transaction, without a server
        txn = _ScriptedTxn(answers)
        txns.append((txn, tuple(write), tuple(read)))
        return body(txn)

    monkeypatch.setattr(offline, "_transaction", transaction)
    yield offline, answers, txns


def test_retry_reopens_the_run_resets_jobs_then_counts_what_they_wait_for(
    scripted: tuple[ArangoStore, dict[str, list[Any]], list[Any]],
) -> None:
    store, answers, txns = scripted
    answers.update(
        RETRY_RUN=["run1"],
        RESET_JOBS=[{"id": "j1", "old": "r1"}, {"id": "j2", "old": "r2"}],
        COUNT_WAITING=[{"id": "j1", "waiting": 0}, {"id": "j2", "waiting": 1}],
    )
    assert store.retry_jobs("run1", {"j2": "r2", "j1": "r9"})
    ((txn, write, read),) = txns
    assert set(write) == {aql.RUNS, aql.JOBS, aql.RESULTS} and aql.DEPS in read
    names = [name for name, _ in txn.ran]
    assert names == ["RETRY_RUN", "RESET_JOBS", "DELETE_RESULTS", "COUNT_WAITING", "REREADY"]
    reset = dict(txn.ran)["RESET_JOBS"]
    assert reset == {"jobs": ["j1", "j2"], "run": "run1", "revisions": {"j1": "r9", "j2": "r2"}}
    reready = dict(txn.ran)["REREADY"]
    assert reready["waiting"] == [
        {"id": "j1", "waiting": 0, "note": "retried: task revision r1 -> r9"},
        {"id": "j2", "waiting": 1, "note": "retried at task revision r2"},
    ]
    assert not store.retry_jobs("run1", {})


def test_retry_of_a_running_run_changes_nothing_and_unsettled_jobs_abort_it(
    scripted: tuple[ArangoStore, dict[str, list[Any]], list[Any]],
) -> None:
    store, answers, txns = scripted
    assert not store.retry_jobs("run1", {"j1": "r1"})  # RETRY_RUN found no settled run
    assert [name for name, _ in txns[0][0].ran] == ["RETRY_RUN"]
    answers.update(RETRY_RUN=["run1"], RESET_JOBS=[{"id": "j1", "old": "r1"}])
    with pytest.raises(MyceliumError, match="j2: not settled jobs of run run1"):
        store.retry_jobs("run1", {"j1": "r1", "j2": "r1"})
    assert [name for name, _ in txns[1][0].ran] == ["RETRY_RUN", "RESET_JOBS"]


def test_fail_run_sets_the_failure_of_a_succeeded_run_and_retry_clears_it(
    offline: ArangoStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[tuple[str, dict[str, object]]] = []
    answer: list[Any] = ["run1"]

    def run(query: aql.Query, **values: object) -> list[Any]:
        aql.bind(query, values)  # exactly its parameters
        ran.append((query.name, values))
        return answer

    monkeypatch.setattr(offline, "_run", run)
    before = time.time()
    assert offline.fail_run("run1", "ValueCrossingError", "not a valid `int`")
    ((name, values),) = ran
    failure = values["failure"]
    assert name == "FAIL_RUN" and values["run"] == "run1" and isinstance(failure, dict)
    assert (failure["error_type"], failure["message"]) == (
        "ValueCrossingError",
        "not a valid `int`",
    )
    assert before <= failure["time"] <= time.time()
    answer.clear()  # the run was not succeeded (any more): nothing changed
    assert not offline.fail_run("run1", "ValueCrossingError", "again")
    # Only from succeeded; a retry takes the field away with the run's end.
    assert 'r.status == "succeeded"' in aql.FAIL_RUN.text
    assert "failure: null" in aql.RETRY_RUN.text and "keepNull: false" in aql.RETRY_RUN.text
    assert "FAIL_RUN" in aql.RERUNNABLE


def test_a_run_document_reads_with_its_failure_and_a_damaged_one_without() -> None:
    doc = {
        "_key": "run1", "pipeline": "m:p", "revision": "p1", "arguments": "{}", "status": "failed",
        "created": 1.0, "finished": 2.0, "total": 1, "output": '{"ref": "n1"}',
        "failure": {"error_type": "ValueCrossingError", "message": "refused", "time": 3.0},
    }  # fmt: skip
    info = backend._run_info(doc, [("e", "succeeded", 1)])
    assert info.failure is not None and (info.failure.message, info.failure.time) == (
        "refused",
        3.0,
    )
    assert info.error == "its value was refused: ValueCrossingError: refused"
    damaged = backend._run_info({**doc, "failure": "garbage"}, [("e", "succeeded", 1)])
    assert damaged.failure is None and damaged.error == "0 job(s) failed, 0 skipped"
    assert backend._run_info({**doc, "status": "succeeded", "failure": None}, []).failure is None


def test_logs_are_appended_with_their_job_run_and_order(
    scripted: tuple[ArangoStore, dict[str, list[Any]], list[Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from elfc.model.records import LogRecord

    store, answers, txns = scripted
    answers["JOBS_FOR_LOGS"] = [{"id": "j1", "run": "run1", "seq": 3}]
    logs = [LogRecord("j1", "ignored", "n1#0", "e", "work", 1, f"line {i}\n") for i in range(2)]
    store.put_logs(logs)
    ((txn, write, _),) = txns
    assert write == (aql.LOGS,)
    docs = dict(txn.ran)["PUT_LOGS"]["docs"]
    assert [(d["run"], d["seq"], d["n"], d["text"], d["time"]) for d in docs] == [
        ("run1", 3, 0, "line 0\n", 1234.5),
        ("run1", 3, 1, "line 1\n", 1234.5),
    ]
    assert len({d["_key"] for d in docs}) == 2
    answers["JOBS_FOR_LOGS"] = []
    with pytest.raises(MyceliumError, match="no such job"):
        store.put_logs(logs)
    assert [name for name, _ in txns[1][0].ran] == ["JOBS_FOR_LOGS"]  # nothing written
    store.stage_logs(logs)  # staged output of a job that is gone is dropped, not an error
    assert [name for name, _ in txns[2][0].ran] == ["JOBS_FOR_LOGS"]

    asked: list[dict[str, object]] = []

    def run(query: aql.Query, **values: object) -> list[Any]:
        aql.bind(query, values)
        asked.append(values)
        return [{**docs[0], "job": "j1", "key": "n1#0", "elf": "e", "task": "work", "attempt": 1}]

    monkeypatch.setattr(store, "_run", run)
    (record,) = store.list_logs("run1")
    assert (record.run, record.text, record.time) == ("run1", "line 0\n", 1234.5)
    assert asked == [{"run": "run1", "key": None, "since": 0.0}]


@pytest.mark.parametrize("older", sorted(aql.UPGRADABLE))
def test_an_older_mycelium_is_upgraded_in_place(
    offline: ArangoStore, monkeypatch: pytest.MonkeyPatch, older: int
) -> None:
    versions = [older]
    ran: list[str] = []

    def execute(db: object, query: aql.Query, **values: object) -> list[Any]:
        aql.bind(query, values)
        ran.append(query.name)
        if query.name == "UPGRADE_SCHEMA":
            versions.append(values["version"])
        return [versions[-1]] if query.name == "SCHEMA" else []

    monkeypatch.setattr(backend, "_execute", execute)
    monkeypatch.setattr(offline, "_set_up", lambda db: ran.append("set up"))
    offline._check_schema(None)  # type: ignore[arg-type]
    assert ran == ["SCHEMA", "set up", "UPGRADE_SCHEMA", "SCHEMA"]
    assert versions == [older, aql.SCHEMA_VERSION] and aql.LOGS in aql.COLLECTIONS
    assert frozenset(range(1, aql.SCHEMA_VERSION)) == aql.UPGRADABLE
    assert any(i.collection == aql.JOBS and i.fields == ("run", "key") for i in aql.INDEXES)
    versions[:] = [99]
    with pytest.raises(MyceliumError, match="schema version 99"):
        offline._check_schema(None)  # type: ignore[arg-type]


def test_prune_removes_a_runs_documents_then_what_nothing_uses_any_more(
    scripted: tuple[ArangoStore, dict[str, list[Any]], list[Any]],
) -> None:
    store, answers, txns = scripted
    assert store.prune_runs(100.0) == 0
    assert [name for name, _ in txns[0][0].ran] == ["PRUNE_PICK"]
    answers.update(
        PRUNE_PICK=[{"id": "run1", "revision": "p1"}],
        PRUNE_JOBS_OF=[
            {"jobs": ["elfc_jobs/j1"], "revisions": ["r1"], "failures": ["elfc_failures/f1"]}
        ],
        PRUNE_TEMPLATES=["p1"],
    )
    assert store.prune_runs(100.0, statuses=["succeeded", "running"], limit=5) == 1
    txn = txns[1][0]
    ran = dict(txn.ran)
    assert ran["PRUNE_PICK"] == {"before": 100.0, "statuses": ["succeeded"], "limit": 5}
    assert [name for name, _ in txn.ran] == [
        "PRUNE_PICK", "PRUNE_JOBS_OF", "PRUNE_DEPS", "PRUNE_JOB_FAILURES", "PRUNE_RUN_ROOTS",
        "PRUNE_RESULTS", "PRUNE_LOGS", "PRUNE_JOBS", "PRUNE_RUNS", "PRUNE_FAILURES",
        "PRUNE_TEMPLATES", "PRUNE_TEMPLATE_NODES", "PRUNE_TEMPLATE_EDGES",
        "PRUNE_TEMPLATE_ROOTS", "PRUNE_REVISIONS",
    ]  # fmt: skip
    assert ran["PRUNE_RUN_ROOTS"] == {"runs": ["elfc_runs/run1"]}
    assert ran["PRUNE_DEPS"] == {"jobs": ["elfc_jobs/j1"]}
    assert ran["PRUNE_FAILURES"] == {"failures": ["elfc_failures/f1"]}
    assert ran["PRUNE_TEMPLATE_NODES"] == {"revisions": ["p1"]}
    assert ran["PRUNE_REVISIONS"] == {"revisions": ["p1", "r1"]}


# -- expanding a region: one stream transaction ---------------------------------------------------


def _spec(key: str, deps: tuple[str, ...] = ()) -> JobSpec:
    return JobSpec(key, key.split("#")[0], "e", "work", "r1", (), {}, deps, 0)


def _expanding(dependents: int = 1, run_status: str = "running") -> dict[str, Any]:
    """An EXPANDING row: the expansion job g1 (key g#0) of run run1, held by w."""
    return {
        "id": "g1", "run": "run1", "run_no": 7, "key": "g#0", "elf": "x", "task": "@expand",
        "attempts": 1, "dependents": dependents, "run_status": run_status,
    }  # fmt: skip


def test_an_expansion_adds_its_jobs_edges_and_join_in_one_transaction(
    scripted: tuple[ArangoStore, dict[str, list[Any]], list[Any]],
) -> None:
    store, answers, txns = scripted
    answers.update(
        EXPANDING=[_expanding()],
        EXPAND_RUN=[10],
        EXTERNAL=[
            {"id": "s1", "key": "s#0", "status": "running"},
            {"id": "d1", "key": "d#0", "status": "succeeded"},
        ],
    )
    join = {"list": [{"ref": "n#1"}, {"ref": "s#0"}]}
    plan = Expansion(
        [_spec("n#0", ("s#0",)), _spec("n#1", ("n#0",)), _spec("n#2", ("d#0",))],
        not_taken=[_spec("t#0")],
        join=join,
    )
    assert store.expand("g1", "w", plan)
    ((txn, write, _),) = txns
    assert set(write) == {aql.JOBS, aql.DEPS, aql.RUN_ROOTS, aql.RUNS, aql.RESULTS}
    names = [name for name, _ in txn.ran]
    assert names == [
        "EXPANDING", "EXPAND_RUN", "EXTERNAL", "INSERT", "INSERT", "INSERT", "ADD_DEPENDENTS",
        "EXPAND_JOB",
    ]  # fmt: skip
    ran = txn.ran
    assert ran[0][1] == {"job": "g1", "worker": "w"}
    assert ran[1][1] == {"run": "run1", "added": 4}
    assert ran[2][1] == {"run": "run1", "keys": ["s#0", "d#0"]}
    jobs, roots, edges = (values["docs"] for _, values in ran[3:6])
    assert [ran[i][1]["collection"] for i in (3, 4, 5)] == [aql.JOBS, aql.RUN_ROOTS, aql.DEPS]
    shape = [(d["key"], d["status"], d["waiting"], d["dependents"], d["seq"]) for d in jobs]
    assert shape == [
        ("n#0", "pending", 1, 1, 10),
        ("n#1", "pending", 1, 1, 11),
        ("n#2", "ready", 0, 0, 12),
        ("t#0", "not_taken", 0, 0, 13),
    ]
    assert {(d["run"], d["run_no"], d["created"]) for d in jobs} == {("run1", 7, 1234.5)}
    assert [d["finished"] for d in jobs] == [None, None, None, 1234.5]
    assert all(d["history"] == [[1234.5, d["status"], "made by expansion g1"]] for d in jobs)
    assert jobs[2]["deps"] == ["d#0"] and jobs[0]["args"] == "[]"
    new = {d["key"]: d["_key"] for d in jobs}
    assert txn.receipt == (aql.JOBS, list(new.values()))
    assert roots == [{"_from": "elfc_runs/run1", "_to": f"elfc_jobs/{new['t#0']}"}]
    # Edges from unfinished dependencies only: none from d#0, which succeeded.
    assert sorted((e["_from"], e["_to"]) for e in edges) == sorted(
        [
            ("elfc_jobs/s1", f"elfc_jobs/{new['n#0']}"),
            (f"elfc_jobs/{new['n#0']}", f"elfc_jobs/{new['n#1']}"),
            (f"elfc_jobs/{new['n#1']}", "elfc_jobs/g1"),
            ("elfc_jobs/s1", "elfc_jobs/g1"),
        ]
    )
    assert ran[6][1] == {"counts": [{"id": "s1", "n": 2}]}
    assert ran[7][1] == {
        "job": "g1", "worker": "w", "task": JOIN, "args": msgspec.json.encode([join]).decode(),
        "kwargs": "{}", "deps": ["n#1", "s#0"], "status": "pending", "waiting": 2,
        "now": 1234.5, "note": "expanded into 3 jobs; joins them",
    }  # fmt: skip
    assert txn.settle == {"run1"}


def test_an_expansion_with_a_result_succeeds_and_readies_the_dependents(
    scripted: tuple[ArangoStore, dict[str, list[Any]], list[Any]],
) -> None:
    store, answers, txns = scripted
    answers.update(EXPANDING=[_expanding()], EXPAND_RUN=[5])
    assert store.expand("g1", "w", Expansion([], not_taken=[_spec("t#0")], result=b"[1]"))
    ((txn, _, _),) = txns
    names = [name for name, _ in txn.ran]
    assert names == [
        "EXPANDING", "EXPAND_RUN", "INSERT", "INSERT", "EXPAND_JOB", "INSERT", "READY_DEPENDENTS",
    ]  # fmt: skip
    values = dict(txn.ran)
    assert values["EXPAND_JOB"]["status"] == "succeeded" and values["EXPAND_JOB"]["task"] is None
    assert values["EXPAND_JOB"]["note"] == "expanded into 0 jobs"
    result = txn.ran[5][1]
    assert result == {
        "collection": aql.RESULTS,
        "docs": [{"_key": "g1", "run": "run1", "key": "g#0", "value": "[1]"}],
    }
    assert values["READY_DEPENDENTS"] == {"done": ["elfc_jobs/g1"], "now": 1234.5}
    # Without new jobs the result is the receipt (its key is the job's id).
    txns.clear()
    answers.update(EXPANDING=[_expanding(dependents=0)])
    assert store.expand("g1", "w", Expansion([], result=b"2"))
    ((txn, _, _),) = txns
    assert [n for n, _ in txn.ran] == ["EXPANDING", "EXPAND_RUN", "EXPAND_JOB", "INSERT"]
    assert txn.receipt == (aql.RESULTS, ["g1"])


def test_a_new_job_waiting_for_a_failed_job_is_skipped_with_the_join_and_its_dependents(
    scripted: tuple[ArangoStore, dict[str, list[Any]], list[Any]],
) -> None:
    store, answers, txns = scripted
    answers.update(
        EXPANDING=[_expanding()],
        EXPAND_RUN=[3],
        EXTERNAL=[{"id": "s1", "key": "s#0", "status": "failed"}],
    )
    plan = Expansion([_spec("n#0", ("s#0",))], join={"ref": "n#0"})
    assert store.expand("g1", "w", plan)
    ((txn, _, _),) = txns
    names = [name for name, _ in txn.ran]
    assert names == [
        "EXPANDING", "EXPAND_RUN", "EXTERNAL", "INSERT", "EXPAND_JOB", "SKIP_DEPENDENTS"
    ]  # fmt: skip
    ((_, inserted),) = [(n, v) for n, v in txn.ran if n == "INSERT"]
    assert [(d["status"], d["finished"]) for d in inserted["docs"]] == [("skipped", 1234.5)]
    values = dict(txn.ran)
    assert (values["EXPAND_JOB"]["status"], values["EXPAND_JOB"]["waiting"]) == ("skipped", 0)
    assert values["SKIP_DEPENDENTS"] == {
        "start": "elfc_jobs/g1", "catch": "@catch", "now": 1234.5, "note": "upstream g#0 failed",
    }  # fmt: skip


def test_an_expansion_without_the_lease_or_in_a_cancelled_run_adds_nothing(
    scripted: tuple[ArangoStore, dict[str, list[Any]], list[Any]],
) -> None:
    store, answers, txns = scripted
    plan = Expansion([_spec("n#0")], join={"ref": "n#0"})
    assert not store.expand("g1", "w", plan)  # EXPANDING found no job held by w
    assert [n for n, _ in txns[0][0].ran] == ["EXPANDING"]
    answers.update(EXPANDING=[_expanding(run_status="cancelled")], REQUEUE=[
        {"run": "run1", "status": "cancelled"}
    ])  # fmt: skip
    assert not store.expand("g1", "w", plan)
    txn = txns[1][0]
    assert [n for n, _ in txn.ran] == ["EXPANDING", "REQUEUE"]
    requeue = dict(txn.ran)["REQUEUE"]
    assert (requeue["jobs"], requeue["worker"], requeue["attempts"]) == (["g1"], "w", -1)
    assert txn.settle == {"run1"}
    # A run no longer running when the run document is written: the same.
    answers.update(EXPANDING=[_expanding()], EXPAND_RUN=[])
    assert not store.expand("g1", "w", plan)
    assert [n for n, _ in txns[2][0].ran] == ["EXPANDING", "EXPAND_RUN", "REQUEUE"]


def test_expansion_statements_write_what_they_read_and_list_not_taken_as_final() -> None:
    # Each conditional write passes the document it read: a concurrent change conflicts.
    for query in (aql.EXPAND_RUN, aql.ADD_DEPENDENTS, aql.EXPAND_JOB):
        assert "ignoreRevs: false" in query.text, query.name
    assert 'r.status == "running"' in aql.EXPAND_RUN.text
    assert 'j.status == "running" AND j.lease_owner == @worker' in aql.EXPAND_JOB.text
    assert not aql.EXPANDING.writes and not aql.EXTERNAL.writes
    # Every AQL list of final job statuses names not_taken too.
    final, checked = sorted(FINAL_JOB_STATUSES), []
    for query in aql.QUERIES.values():
        for listed in re.findall(r"\[((?:\s*\"\w+\",?)+)\]", query.text):
            statuses = set(re.findall(r"\"(\w+)\"", listed))
            if {"failed", "skipped"} <= statuses:
                assert statuses == set(final), (query.name, statuses)
                checked.append(query.name)
    assert "RESET_JOBS" in checked
