"""Robustness: random pipeline bodies from a grammar never crash the compiler.

The grammar produces assignments, task calls, derives (operators, subscripts, pure builtins,
f-strings), static ``for``/``while`` loops and ``if``s, containers collecting results, tuple
unpacking, nested pipelines, and, with some probability, a construct that is outside DESIGN §3
(a branch or loop on a task result, a method that is not pure or a plain function called on
one, try, with, a
capturing lambda...). Each body is written to a module file and imported, then:

- compiling it raises nothing but ``CompileError`` (through ``require()``);
- every diagnostic lies inside the pipeline's source lines, and a body with a construct outside
  DESIGN §3 has at least one;
- a body built only from allowed constructs compiles without errors, and running it in process
  gives what the same body gives as plain Python with the elves called directly.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elfc.errors import CompileError
from elfc.pipeline import Pipeline

HEADER = """\
from __future__ import annotations

from fuzz_elves import inner, left, right, helper

from elfc import pipeline


"""

ELVES = '''\
"""Elves for the fuzz test; `plain` swaps handles and pipelines for plain objects."""

from __future__ import annotations

import os
from typing import TypedDict

from elfc import elf, named, pipeline, task


class Rec(TypedDict):
    a: int
    b: int


@elf
class Worker:
    def __init__(self, offset: int) -> None:
        self.offset = offset

    @task
    def num(self, x: int) -> int:
        return (x + self.offset) % 97

    @task
    def pair(self, a: int, b: int) -> tuple[int, int]:
        return (a % 89, (a + b) % 89)

    @task
    def rec(self, x: int) -> Rec:
        return Rec(a=x % 83, b=(x + 1) % 83)

    @task
    def total(self, xs: list[int]) -> int:
        return sum(xs) % 101

    @task
    def check(self, x: int) -> int:
        if x % 4 == 0:
            raise ValueError(f"{x} is a multiple of 4")
        return x % 89


def helper(x: int) -> int:
    return x + 1


if os.environ.get("ELFC_FUZZ_PLAIN"):
    left = Worker(1)
    right = Worker(2)

    def inner(x: int) -> int:
        return right.num(left.num(x))
else:
    left = named(Worker, "fuzz-left", 1)
    right = named(Worker, "fuzz-right", 2)

    @pipeline
    def inner(x: int) -> int:
        return right.num(left.num(x))
'''


class Body:
    """Accumulates the lines of a pipeline body and the names in scope."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.static: list[str] = ["n"]
        self.dynamic: list[str] = []
        self.lists: list[str] = []
        self.boxes: list[str] = []
        self.counter = itertools.count()
        self.valid = True
        self.regions = 0
        """How many branches or loops on task results the current line is in."""
        self.in_try = False
        """True in the body of a `try` around task calls (no branch or loop on a result)."""

    def fresh(self, prefix: str) -> str:
        return f"{prefix}{next(self.counter)}"


@st.composite
def static_expr(draw: st.DrawFn, body: Body) -> str:
    options = [str(draw(st.integers(0, 5)))]
    options += body.static
    options += [f"len({name})" for name in body.lists]
    base = draw(st.sampled_from(options))
    if draw(st.booleans()):
        return base
    return f"({base} {draw(st.sampled_from(['+', '-', '*']))} {draw(st.integers(0, 3))})"


@st.composite
def dynamic_expr(draw: st.DrawFn, body: Body, depth: int = 0) -> str:
    def arg() -> str:
        if depth < 2 and draw(st.booleans()):
            return draw(dynamic_expr(body, depth + 1))
        return draw(static_expr(body))

    handle = draw(st.sampled_from(["left", "right"]))
    choices: list[Callable[[], str]] = [
        lambda: f"{handle}.num({arg()})",
        lambda: f"{handle}.pair({arg()}, {arg()})[{draw(st.integers(0, 1))}]",
        lambda: f'{handle}.rec({arg()})["{draw(st.sampled_from("ab"))}"]',
        lambda: f"{handle}.total([{arg()}, {arg()}])",
        lambda: f"inner({arg()})",
    ]
    if body.dynamic:
        name = draw(st.sampled_from(body.dynamic))
        choices += [
            lambda: name,
            lambda: f"({name} {draw(st.sampled_from(['+', '-', '*']))} {arg()})",
            lambda: f"max({name}, {arg()})",
            lambda: f"abs(-{name})",
            lambda: f"len(str({name}))",
            lambda: f'int(f"{{{name}}}1")',
            lambda: f"({name} if {draw(static_expr(body))} > 2 else {arg()})",
            lambda: f"sum([{name}, {arg()}])",
            lambda: f"({name} > {arg()}) + 1",
            lambda: f'len(f"{{{name}}}-{{{draw(static_expr(body))}}}")',
            lambda: f"(-{name} + {name} * 2)",
            lambda: f"{name}.bit_length()",
            lambda: f'len("-".join([str({name}), "x"]))',
        ]
    if body.boxes:
        box = draw(st.sampled_from(body.boxes))
        choices += [lambda: f'{box}["{draw(st.sampled_from("ab"))}"]']
    if body.lists:
        acc = draw(st.sampled_from(body.lists))
        choices += [lambda: f"{handle}.total({acc})", lambda: f"sum({acc}) % 100"]
    return draw(st.sampled_from(choices))()


BAD = [
    "for _x in {h}.pair(1, 2):\n    break\nelse:\n    pass",
    "for _x in range(2):\n    if {d} > 3:\n        break",
    "{d} = {d}.to_bytes(2, 'big')",
    "_g = helper\n_y = _g({d})",
    "try:\n    _y = {h}.num(1)\n    return _y\nexcept ValueError:\n    pass",
    "with open('x'):\n    pass",
    "_f = lambda: {d}",
    "del {d}",
    "print({h}.rec(1).a)",
    "_y = {h}.num()",
    "_y = {h}.missing(1)",
    "{h}.num({d})",
    "_y = {{{d}: 1}}",
    "_y = {h}.rec(1)['c']",
    "_y = sum(z for z in [{d}])",
    "_y = {h}.total(range(2))",
]


@st.composite
def statements(draw: st.DrawFn, body: Body, indent: str, depth: int) -> None:
    start = len(body.lines)
    block(draw, body, indent, depth)
    if len(body.lines) == start:
        body.lines.append(f"{indent}pass")


def block(draw: st.DrawFn, body: Body, indent: str, depth: int) -> None:
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(
            st.sampled_from(
                ["static", "dynamic", "dynamic", "append", "for", "if", "while", "aug", "unpack"]
                + ["comprehension", "iterate", "iterate", "box", "dyn_if", "dyn_for", "dyn_comp"]
                + ["dyn_try", "call"]
                + (["bad"] if draw(st.integers(0, 5)) == 0 else [])
            )
        )
        if kind in ("for", "if", "while", "iterate", "dyn_if", "dyn_for", "dyn_try") and depth >= 2:
            kind = "dynamic"
        if kind in ("dyn_if", "dyn_for", "dyn_comp", "dyn_try", "bad") and body.in_try:
            kind = "dynamic"
        if kind in ("append", "box") and body.regions:
            # A list appended to or a dict changed in a region is a task result after it.
            kind = "dynamic"
        emit = body.lines.append
        if kind == "static":
            name = body.fresh("s")
            emit(f"{indent}{name} = {draw(static_expr(body))}")
            if depth == 0:
                body.static.append(name)
        elif kind == "dynamic":
            reuse = depth > 0 and body.dynamic and draw(st.booleans())
            name = draw(st.sampled_from(body.dynamic)) if reuse else body.fresh("d")
            emit(f"{indent}{name} = {draw(dynamic_expr(body))}")
            if depth == 0 and not reuse:
                body.dynamic.append(name)
        elif kind == "append":
            if not body.lists:
                name = body.fresh("acc")
                # A task result first: an element of the list is then dynamic (what `iterate`
                # below assumes of its loop variable).
                emit(f"{indent}{name} = [{draw(dynamic_expr(body))}]")
                if depth == 0:
                    body.lists.append(name)
                continue
            emit(f"{indent}{draw(st.sampled_from(body.lists))}.append({draw(dynamic_expr(body))})")
        elif kind == "aug":
            if body.dynamic and depth > 0:
                emit(f"{indent}{draw(st.sampled_from(body.dynamic))} += {draw(static_expr(body))}")
        elif kind == "unpack" and depth == 0:
            a, b = body.fresh("u"), body.fresh("u")
            handle = draw(st.sampled_from(["left", "right"]))
            emit(f"{indent}{a}, {b} = {handle}.pair({draw(static_expr(body))}, 1)")
            body.dynamic += [a, b]
        elif kind == "comprehension" and depth == 0:
            name, var = body.fresh("acc"), body.fresh("c")
            body.static.append(var)
            element = (
                f"{draw(st.sampled_from(['left', 'right']))}.num({var} + {draw(static_expr(body))})"
            )
            body.static.remove(var)
            emit(f"{indent}{name} = [{element} for {var} in range({draw(st.integers(0, 3))})]")
            body.lists.append(name)
        elif kind == "iterate" and body.lists:
            lst = draw(st.sampled_from(body.lists))
            var, index = body.fresh("x"), body.fresh("k")
            if draw(st.booleans()):
                emit(f"{indent}for {index}, {var} in enumerate({lst}):")
                body.static.append(index)
            else:
                emit(f"{indent}for {var} in {lst}:")
            body.lists.remove(lst)  # never grow the list being iterated
            body.dynamic.append(var)
            draw(statements(body, indent + "    ", depth + 1))
            body.dynamic.remove(var)
            body.lists.append(lst)
            if index in body.static:
                body.static.remove(index)
        elif kind == "box":
            if depth == 0:
                name = body.fresh("box")
                emit(
                    f'{indent}{name} = {{"a": {draw(dynamic_expr(body))}, "b": {draw(static_expr(body))}}}'
                )
                body.boxes.append(name)
            elif body.boxes:
                box = draw(st.sampled_from(body.boxes))
                emit(f'{indent}{box}["{draw(st.sampled_from("ab"))}"] = {draw(dynamic_expr(body))}')
        elif kind == "for":
            var = body.fresh("i")
            emit(f"{indent}for {var} in range({draw(st.integers(0, 3))}):")
            body.static.append(var)
            draw(statements(body, indent + "    ", depth + 1))
            body.static.remove(var)
        elif kind == "while":
            var = body.fresh("w")
            emit(f"{indent}{var} = 0")
            emit(f"{indent}while {var} < {draw(st.integers(0, 2))}:")
            body.static.append(var)
            draw(statements(body, indent + "    ", depth + 1))
            emit(f"{indent}    {var} += 1")
            body.static.remove(var)
        elif kind == "if":
            emit(f"{indent}if {draw(static_expr(body))} > 2:")
            draw(statements(body, indent + "    ", depth + 1))
            emit(f"{indent}else:")
            draw(statements(body, indent + "    ", depth + 1))
        elif kind == "dyn_if":
            # A branch on a task result: a region, decided when the result exists.
            emit(f"{indent}if {draw(dynamic_expr(body))} > {draw(st.integers(0, 12))}:")
            body.regions += 1
            draw(statements(body, indent + "    ", depth + 1))
            emit(f"{indent}else:")
            draw(statements(body, indent + "    ", depth + 1))
            body.regions -= 1
        elif kind == "dyn_for":
            # A loop over a task result: expanded, one copy of the body per element.
            var = body.fresh("e")
            handle = draw(st.sampled_from(["left", "right"]))
            emit(f"{indent}for {var} in {handle}.pair({draw(static_expr(body))}, 1):")
            body.static.append(var)
            body.regions += 1
            draw(statements(body, indent + "    ", depth + 1))
            body.regions -= 1
            body.static.remove(var)
        elif kind == "call":
            # A plain function of the user's called with a task result: run once, where the
            # result exists.
            name = body.fresh("h")
            emit(f"{indent}{name} = helper({draw(dynamic_expr(body))})")
            if depth == 0:
                body.dynamic.append(name)
        elif kind == "dyn_try":
            # A task that may fail, caught: the handler runs when the body's jobs settled.
            name = body.fresh("t")
            handle = draw(st.sampled_from(["left", "right"]))
            emit(f"{indent}try:")
            emit(f"{indent}    {name} = {handle}.check({draw(dynamic_expr(body))})")
            body.regions += 1
            body.in_try = True
            draw(statements(body, indent + "    ", depth + 1))
            body.in_try = False
            emit(f"{indent}except {draw(st.sampled_from(['ValueError', 'Exception']))}:")
            emit(f"{indent}    {name} = {draw(static_expr(body))}")
            draw(statements(body, indent + "    ", depth + 1))
            body.regions -= 1
            if depth == 0:
                body.dynamic.append(name)
        elif kind == "dyn_comp" and depth == 0:
            name, var = body.fresh("acc"), body.fresh("c")
            handle = draw(st.sampled_from(["left", "right"]))
            emit(
                f"{indent}{name} = sum([{handle}.num({var} + {draw(st.integers(0, 3))}) for {var}"
                f" in {handle}.pair({draw(static_expr(body))}, 2) if {var} != 3])"
            )
            body.dynamic.append(name)
        elif kind == "bad":
            if not body.dynamic:
                name = body.fresh("d")
                emit(f"{indent}{name} = left.num({draw(static_expr(body))})")
                body.dynamic.append(name)
            body.valid = False
            template = draw(st.sampled_from(BAD))
            text = template.format(d=draw(st.sampled_from(body.dynamic)), h="left")
            emit("\n".join(indent + line for line in text.splitlines()))


@st.composite
def pipelines(draw: st.DrawFn) -> tuple[str, bool]:
    body = Body()
    draw(statements(body, "    ", 0))
    parts = [draw(dynamic_expr(body)) for _ in range(draw(st.integers(1, 3)))]
    tail = "".join(f" + {name}" for name in body.lists)
    body.lines.append(f"    return [{', '.join(parts)}]{tail}")
    source = HEADER + "@pipeline\ndef fuzzed(n: int = 2) -> object:\n" + "\n".join(body.lines)
    return source + "\n", body.valid


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "fuzz_elves.py").write_text(ELVES, encoding="utf-8")
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))
    for name in [m for m in sys.modules if m.startswith("fuzz_")]:
        del sys.modules[name]


COUNTER = itertools.count()


def load(folder: Path, source: str) -> ModuleType:
    name = f"fuzz_case_{next(COUNTER)}"
    path = folder / f"{name}.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def plain_result(folder: Path, source: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The body run as plain Python: handles are real elves, pipelines plain functions."""
    with monkeypatch.context() as patch:
        patch.setenv("ELFC_FUZZ_PLAIN", "1")
        saved = sys.modules.pop("fuzz_elves")
        try:
            module = load(folder, source.replace("@pipeline\n", ""))
            return module.fuzzed()
        finally:
            sys.modules["fuzz_elves"] = saved


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(case=pipelines())
def test_random_pipelines_compile_or_explain(
    case: tuple[str, bool], workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, valid = case
    module = load(workdir, source)
    fuzzed: Pipeline[..., Any] = module.fuzzed
    compiled = fuzzed.compiled()
    try:
        compiled.require()
    except CompileError as exc:
        assert exc.diagnostics
    first = source.splitlines().index("@pipeline") + 1
    last = len(source.splitlines())
    for d in compiled.diagnostics:
        assert d.path == module.__file__, d.headline()
        assert first <= d.line <= d.end_line <= last, d.headline()
        assert d.column >= 1 and (d.line, d.column) < (d.end_line, d.end_column), d.headline()
        assert d.code != "ELF199"
    if not valid:  # each construct outside DESIGN §3 is reported (ELF201 is a warning)
        assert compiled.diagnostics, source
        return
    assert not compiled.errors, [d.headline() for d in compiled.errors]
    expected = plain_result(workdir, source, monkeypatch)
    assert json.loads(json.dumps(fuzzed())) == json.loads(json.dumps(expected))
