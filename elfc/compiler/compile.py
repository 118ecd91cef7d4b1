"""Compile a pipeline: source -> libcst -> analysis -> graph template + builder.

``compile_pipeline(fn)`` never raises for a problem in the user's pipeline: it returns a
``Compiled`` whose ``diagnostics`` say what is wrong; ``Compiled.require()`` raises
``CompileError`` when any of them is an error. ``compiled_for(fn)`` is the same, compiled once
per function object in this process (what pipelines and inlining use).
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import functools
import inspect
import linecache
import os
import re
import textwrap
import types
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from elfc.compiler import cache
from elfc.compiler import diagnostics as dg
from elfc.compiler.elves import elf_info, normalized_revision
from elfc.compiler.lower import BUILDER, BuildState, Frame, value_ir
from elfc.compiler.text import char_offset, function_source
from elfc.decorators import HANDLES, Handle, pipeline_name
from elfc.errors import BuildError, CompileError, SourceUnavailable
from elfc.model.ir import (
    IR,
    BuiltRun,
    CallNode,
    DeriveNode,
    InlineNode,
    Span,
    Template,
    revision_of,
)
from elfc.model.modules import importable_name

if TYPE_CHECKING:
    from elfc.compiler.analysis import Analysis


@dataclass(eq=False)
class Compiled:
    """The result of compiling one pipeline.

    Not frozen on purpose: the builder's code is lowered on first use and kept (``code``), as
    is the table of task revisions per call site; everything else is set once at construction.
    """

    name: str
    diagnostics: tuple[dg.Diagnostic, ...]
    template: Template | None = None
    code: types.CodeType | None = None
    """The builder's code object; None until ``builder()`` first lowers the pipeline (checking
    a pipeline never needs it, and lowering costs as much as analysing)."""
    fn: Any = None
    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)
    derives: dict[str, IR] = field(default_factory=dict)
    handles: dict[str, Handle] = field(default_factory=dict)
    lower: Callable[[], types.CodeType] | None = field(default=None, repr=False, compare=False)

    def builder(self) -> types.CodeType:
        """The builder's code object, lowered on first use."""
        if self.code is None:
            if self.lower is None:
                raise CompileError(self.errors or self.diagnostics)
            self.code = self.lower()
        return self.code

    def task_revision(self, node_id: str, handle: str) -> str | None:
        """The revision the compiler recorded for ``handle``'s task at call site ``node_id``."""
        return self._revisions.get((node_id, handle))

    def qualified_name(self) -> str:
        """``module:function`` as another process imports it (``__main__`` resolved)."""
        module, _, qualname = self.name.partition(":")
        return f"{importable_name(module)}:{qualname}"

    def program_revision(self) -> str:
        assert self.template is not None
        return self.template.revision

    def region_function(self, rid: str) -> Callable[..., Any]:
        """Region ``rid``'s function (see ``regions.py``), built from the builder's code."""
        found = self._region_functions.get(rid)
        if found is None:
            from elfc.compiler.regions import region_function_name

            code = _find_code(self.builder(), region_function_name(rid))
            if code is None:
                raise BuildError(f"{self.name} has no region {rid} (its code changed?)")
            found = self._region_functions[rid] = types.FunctionType(code, _globals(self.fn))
        return found

    def limit(self, name: str, default: int) -> int:
        """A bound the pipeline sets (``@pipeline(max_elements=...)``), else ``default``."""
        value = getattr(self.fn, f"__elfc_{name}__", None)
        return value if isinstance(value, int) and value > 0 else default

    def describe(self, rid: str) -> str:
        """``the loop `for x in rows` (file.py, line 12)``: a region as users read it."""
        for r in self.template.regions if self.template else ():
            if r.id == rid:
                what = {"while": "the loop", "for": "the loop", "comp": "the comprehension"}
                where = f"{Path(r.span.path).name}, line {r.span.line}"
                return f"{what.get(r.kind, 'the branch')} `{r.header}` ({where})"
        return f"region {rid}"

    @functools.cached_property
    def _region_functions(self) -> dict[str, Callable[..., Any]]:
        return {}

    @functools.cached_property
    def _revisions(self) -> dict[tuple[str, str], str]:
        table = {}
        for n in self.template.nodes if self.template else ():
            if isinstance(n, CallNode):
                for h, rev in zip(n.handles, n.revisions, strict=True):
                    table[n.id, h] = rev
        return table

    @property
    def errors(self) -> list[dg.Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    def require(self) -> Compiled:
        """Return self, or raise ``CompileError`` with the errors."""
        if self.errors or self.template is None:
            raise CompileError(self.errors or self.diagnostics)
        return self

    def invoke(self, frame: Frame, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        fn = self.fn
        builder = types.FunctionType(
            self.builder(),
            _globals(fn),
            fn.__name__,
            fn.__defaults__,
        )
        builder.__kwdefaults__ = fn.__kwdefaults__
        return builder(*args, **kwargs, **{BUILDER: frame})

    def build(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> BuiltRun:
        """Run the static code with these arguments; one job per task call executed."""
        return self.build_with_handles(args, kwargs)[0]

    def build_with_handles(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[BuiltRun, dict[str, Handle]]:
        """``build``, plus the handle behind each elf name the jobs use."""
        assert self.template is not None
        try:
            bound = inspect.signature(self.fn).bind(*args, **kwargs)
        except TypeError as exc:
            raise BuildError(f"{self.name}{inspect.signature(self.fn)}: {exc}") from exc
        bound.apply_defaults()
        state = BuildState(compile=compiled_for)
        output = value_ir(self.invoke(Frame(state, self), args, kwargs))
        built = BuiltRun(
            pipeline=self.name,
            revision=self.template.revision,
            arguments=_arguments(bound.arguments),
            jobs=tuple(state.jobs),
            output=output,
        )
        # Every elf the run may need: also those of jobs that regions on task results make
        # when they are expanded (a worker for each must be there by then).
        handles = dict(state.handles)
        for program in self._programs():
            for name, handle in program.handles.items():
                handles.setdefault(name, handle)
        return built, handles

    def elf_names(self) -> set[str]:
        """Every elf this pipeline (and what it inlines) may run a job on."""
        return {name for program in self._programs() for name in program.handles}

    def _programs(self) -> list[Compiled]:
        """This pipeline and the pipelines it inlines (those compiled in this process)."""
        seen: dict[str, Compiled] = {}
        todo: list[Compiled] = [self]
        while todo:
            program = todo.pop()
            if program.name in seen:
                continue
            seen[program.name] = program
            for node in program.template.nodes if program.template else ():
                if isinstance(node, InlineNode):
                    inner = _BY_NAME.get(_importable(node.pipeline))
                    if inner is not None:
                        todo.append(inner)
        return list(seen.values())


def _importable(name: str) -> str:
    module, _, qualname = name.partition(":")
    return f"{importable_name(module)}:{qualname}"


def _find_code(code: types.CodeType, name: str) -> types.CodeType | None:
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            if const.co_name == name:
                return const
            found = _find_code(const, name)
            if found is not None:
                return found
    return None


def _globals(fn: Any) -> dict[str, Any]:
    if not fn.__code__.co_freevars:
        return fn.__globals__  # type: ignore[no-any-return]
    scope = dict(fn.__globals__)
    for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=False):
        with contextlib.suppress(ValueError):  # an empty cell: not yet assigned
            scope[name] = cell.cell_contents
    return scope


def _arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    """The run's arguments as JSON, for display (a datetime as its ISO text, a tuple a list)."""
    return {k: _shown(v) for k, v in arguments.items()}


def _shown(value: Any) -> Any:
    try:
        return msgspec.to_builtins(value, enc_hook=repr)
    except (TypeError, msgspec.EncodeError):
        return repr(value)


_COMPILING: set[int] = set()
_COMPILED: weakref.WeakKeyDictionary[Callable[..., Any], Compiled] = weakref.WeakKeyDictionary()


_BY_NAME: weakref.WeakValueDictionary[str, Compiled] = weakref.WeakValueDictionary()


def compiled_for(fn: Callable[..., Any]) -> Compiled:
    """``compile_pipeline(fn)``, once per function object in this process."""
    compiled = _COMPILED.get(fn)
    if compiled is None:
        compiled = _COMPILED[fn] = compile_pipeline(fn)
        if compiled.template is not None:
            _BY_NAME[compiled.qualified_name()] = compiled
    return compiled


def compiled_named(name: str) -> Compiled | None:
    """The pipeline (or helper) ``module:qualname`` this process has compiled, if any."""
    return _BY_NAME.get(name)


def compile_pipeline(fn: Callable[..., Any]) -> Compiled:
    """Compile the pipeline function ``fn`` (through the on-disk cache unless disabled)."""
    if id(fn) in _COMPILING:
        name = pipeline_name(fn)
        where = _fallback_span(fn)
        return Compiled(name, (dg.RECURSIVE_PIPELINE.at(where, name=name, chain="inlining"),))
    _COMPILING.add(id(fn))
    try:
        return _cached_compile(fn)
    finally:
        _COMPILING.discard(id(fn))


def _cached_compile(fn: Callable[..., Any]) -> Compiled:
    """``_compile``, through the on-disk cache shared by every process (see cache.py)."""
    if os.environ.get("ELFC_NO_COMPILE_CACHE"):
        return _compile(fn)
    try:
        text = function_source(fn).text
    except SourceUnavailable:
        return _compile(fn)
    path = cache.entry_path(fn, text)
    if path is None:
        return _compile(fn)
    entry = cache.load(path)
    if entry is not None:
        return _from_entry(fn, entry, path)
    compiled = _compile(fn)
    entry = cache.Entry(
        format=cache.FORMAT,
        template=compiled.template,
        diagnostics=cache.diagnostics_to_json(compiled.diagnostics),
        code=None,
        chains={k: list(v) for k, v in compiled.chains.items()},
        derives=compiled.derives,
        handles=sorted(compiled.handles),
    )
    cache.store(path, entry)
    return _storing_code(compiled, entry, path)


def _storing_code(compiled: Compiled, entry: cache.Entry, path: Path) -> Compiled:
    """``compiled`` whose first lowering also writes the builder's code into the cache."""
    lower = compiled.lower
    if lower is None:
        return compiled

    def lower_and_store() -> types.CodeType:
        code = lower()
        cache.store(path, msgspec.structs.replace(entry, code=cache.code_bytes(code)))
        return code

    return dataclasses.replace(compiled, lower=lower_and_store)


def _from_entry(fn: Callable[..., Any], entry: cache.Entry, path: Path) -> Compiled:
    code = cache.code_object(entry.code)

    def lower() -> types.CodeType:
        # Cached without its builder: compile once more to lower it (and store that).
        fresh = _storing_code(_compile(fn), entry, path)
        return fresh.builder()

    return Compiled(
        name=pipeline_name(fn),
        diagnostics=cache.diagnostics_from_json(entry.diagnostics),
        template=entry.template,
        code=code,
        fn=fn,
        chains={k: tuple(v) for k, v in entry.chains.items()},
        derives=entry.derives,
        handles={n: HANDLES[n][-1] for n in entry.handles if HANDLES.get(n)},
        lower=None if code is not None else lower,
    )


def _fallback_span(fn: Any) -> Span:
    """The first line of ``fn`` (its ``lambda`` for a lambda), as far as its file is known."""
    code = getattr(fn, "__code__", None)
    path = code.co_filename if code else "<unknown>"
    line = code.co_firstlineno if code else 1
    text = _code_part(linecache.getline(path, line))
    start = len(text) - len(text.lstrip())
    found = re.search(r"\blambda\b", text)
    if getattr(fn, "__name__", "") == "<lambda>" and found:
        start = found.start()
    return Span(path, line, start + 1, line, max(len(text), start + 1) + 1)


def _code_part(line: str) -> str:
    """A source line without its newline and trailing ``# comment`` (unless a string might
    hold the ``#``)."""
    line = line.rstrip("\r\n")
    cut = line.find("#")
    if cut >= 0 and not any(q in line[:cut] for q in "'\""):
        line = line[:cut]
    return line.rstrip()


def _compile(fn: Callable[..., Any]) -> Compiled:
    # libcst and the analysis load only when something is compiled for real (not from cache).
    import libcst as cst

    from elfc.compiler.analysis import Analyzer
    from elfc.compiler.source import Positions

    name = pipeline_name(fn)
    try:
        source = function_source(fn)
    except SourceUnavailable as exc:
        d = dg.SOURCE_UNAVAILABLE.at(_fallback_span(fn), name=name, why=str(exc))
        return Compiled(name, (d,))
    try:
        module = cst.parse_module(source.text)
    except cst.ParserSyntaxError as exc:
        span = source.span(exc.raw_line, exc.raw_column, exc.raw_line, exc.raw_column + 1)
        d = dg.SYNTAX_OR_IMPORT.at(
            span, problem=f"syntax error: {exc.message}", fix="fix the syntax"
        )
        return Compiled(name, (d,))
    fndef = next(s for s in module.body if isinstance(s, cst.FunctionDef))
    positions = Positions(source, module)
    analysis = Analyzer(fn, source, module, fndef, positions).run()
    diags = list(analysis.diagnostics.values())
    diags += _task_diagnostics(analysis)
    inlined_revisions = []
    nodes = []
    for node in analysis.nodes.values():
        if isinstance(node, InlineNode):
            sub = compiled_for(analysis.inlined[node.pipeline])
            if sub.template is None:
                diags += [
                    d if d.code != "ELF119" else dg.RECURSIVE_PIPELINE.at(
                        node.span, name=name, chain=node.source
                    )
                    for d in sub.errors
                ]  # fmt: skip
                continue
            inlined_revisions.append(sub.template.revision)
            node = InlineNode(
                id=node.id, pipeline=node.pipeline, revision=sub.template.revision,
                span=node.span, region=node.region, source=node.source,
            )  # fmt: skip
        nodes.append(node)
    diags.sort()
    if any(d.severity == "error" for d in diags):
        return Compiled(name, tuple(diags))
    source_revision = normalized_revision(source.text, positions.tree)
    revision = revision_of(
        source_revision,
        *sorted(set(analysis.tasks.values())),
        *sorted(inlined_revisions),
        *(f"{name}={rev}" for name, rev in sorted(analysis.helpers.items())),
    )
    used_regions: set[str | None] = {r for n in nodes if (r := getattr(n, "region", None))}
    # A region is drawn when jobs run in it; a `try` always (its handlers may hold none). A
    # call region is drawn as its node.
    regions = [
        r
        for r in analysis.regions.values()
        if r.kind == "try" or _region_used(r.id, analysis, used_regions)
    ]
    def_line = positions.span(fndef).line
    template = Template(
        pipeline=name,
        revision=revision,
        source_revision=source_revision,
        path=source.path,
        line=def_line,
        nodes=tuple(nodes),
        edges=tuple(sorted(analysis.edges, key=lambda e: (e.target, e.source, e.label))),
        regions=tuple(regions),
    )

    def lower() -> types.CodeType:
        from elfc.compiler.rewrite import builder_code

        return builder_code(fndef, analysis, source.path, def_line)  # type: ignore[no-any-return]

    return Compiled(
        name=name,
        diagnostics=tuple(diags),
        template=template,
        lower=lower,
        fn=fn,
        chains=analysis.chains,
        derives={n.id: n.expr for n in nodes if isinstance(n, DeriveNode)},
        handles=analysis.handles,
    )


def _region_used(rid: str, analysis: Any, used: set[str | None]) -> bool:
    for r in used:
        while r is not None:
            if r == rid:
                return True
            r = analysis.regions[r].parent
    return False


def _task_diagnostics(analysis: Analysis) -> list[dg.Diagnostic]:
    """ELF113 for the tasks this pipeline calls."""
    used: dict[type, set[str]] = {}
    for handle, name in analysis.tasks:
        used.setdefault(analysis.handles[handle].cls, set()).add(name)
    return [d for cls, names in used.items() for d in task_diagnostics(cls, names)]


def task_diagnostics(cls: type, only: set[str] | None = None) -> list[dg.Diagnostic]:
    """ELF113 for each task of ``cls`` (or each of ``only``) whose annotations cannot cross a
    process, at the task's ``def`` line."""
    out = []
    for t in elf_info(cls).tasks.values():
        if (only is not None and t.name not in only) or not t.problems:
            continue
        span = def_span(cls, t.name)
        for problem in t.problems:
            where = _annotation_span(cls, t.name, span, problem)
            out.append(dg.UNCROSSABLE.at(where, where=f"task `{t.qualname}`", problem=problem))
    return out


def _annotation_span(cls: type, name: str, def_line: Span, problem: str) -> Span:
    """Within the ``def`` line: the parameter or return annotation a problem is about, when it
    is written on that line; else the whole line."""
    found = re.match(r"parameter `(\w+)`", problem)
    target: ast.AST | None = None
    try:
        fn = inspect.getattr_static(cls, name)
        lines, start = inspect.getsourcelines(getattr(fn, "__func__", fn))
        indent = len(lines[0]) - len(lines[0].lstrip())
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except (OSError, TypeError, SyntaxError):
        return def_line
    fndef = next(
        (n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)), None
    )
    if fndef is None:
        return def_line
    if found:
        args = fndef.args
        every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
        target = next((a for a in every if a is not None and a.arg == found.group(1)), None)
    elif problem.startswith("the return type"):
        target = fndef.returns
    if target is None or start + target.lineno - 1 != def_line.line:  # type: ignore[attr-defined]
        return def_line
    text = linecache.getline(def_line.path, def_line.line)
    return Span(
        def_line.path,
        def_line.line,
        char_offset(text, indent + target.col_offset) + 1,  # type: ignore[attr-defined]
        def_line.line,
        char_offset(text, indent + (target.end_col_offset or 0)) + 1,  # type: ignore[attr-defined]
    )


def def_span(cls: type, name: str) -> Span:
    """The ``def`` line of method ``name`` of ``cls`` (after its decorators)."""
    fn = inspect.getattr_static(cls, name)
    fn = getattr(fn, "__func__", fn)
    try:
        lines, start = inspect.getsourcelines(fn)
        path = inspect.getsourcefile(fn) or "<unknown>"
    except (OSError, TypeError):
        return Span("<unknown>", 1, 1, 1, 1)
    offset = next(
        (i for i, line in enumerate(lines) if line.lstrip().startswith(("def ", "async def "))),
        0,
    )
    text = _code_part(lines[offset])
    col = len(text) - len(text.lstrip()) + 1
    return Span(path, start + offset, col, start + offset, len(text) + 1)
