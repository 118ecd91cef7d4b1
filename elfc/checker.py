"""``elfc check``: import modules, compile every pipeline, validate every elf and handle.

Usage::

    result = check(["examples/"], build=True)
    for d in result.diagnostics:
        print(render_diagnostic(d))

``check`` never raises for a problem in the checked code: an import or syntax error, a
compiler diagnostic, a handle conflict or a failed build is a ``Diagnostic`` in the result.
Each module is checked right after it is imported (its pipelines compiled, its elves and
handles validated, its pipelines built when ``build``), because annotations resolve through
``sys.modules`` and a later module of the same name (``examples/*/pipeline.py``) replaces it.
"""

from __future__ import annotations

import ast
import functools
import gc
import importlib.util
import inspect
import os
import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from elfc.compiler import diagnostics as dg
from elfc.compiler.compile import task_diagnostics
from elfc.compiler.text import char_offset
from elfc.config import PYPROJECT, elfc_table, find_pyproject
from elfc.decorators import HANDLES, Handle, is_elf
from elfc.errors import ElfcError, PathNotFound
from elfc.model.ir import CATCH, EXPAND, CallNode, DeriveNode, Region, Span, Template
from elfc.model.records import ElfRecord
from elfc.pipeline import Pipeline
from elfc.runtime.client import registered_otherwise
from elfc.targets import import_path

SKIP_DIRS = frozenset(
    {"__pycache__", "node_modules", "site-packages", "venv", "build", "dist", "htmlcov"}
)
"""Directory names never searched (besides hidden ones such as ``.git`` and ``.venv``)."""


@dataclass(frozen=True)
class PipelineSummary:
    """One checked pipeline, and how many jobs it makes with its default arguments."""

    name: str
    path: str
    line: int
    call: str
    """``census(rounds=10)``: the call that was built, or the signature when not built."""
    jobs: int | None = None
    """The job count when built; None when not built (see ``why``)."""
    regions: int = 0
    """How many of those jobs expand a branch or loop on task results at run time."""
    why: str = ""
    formula: str = ""
    """The jobs those expansions add, as a formula of what the run reads (``2·len(files) +
    (1 or 0)``); empty without expansions."""


@dataclass(frozen=True)
class CheckResult:
    diagnostics: tuple[dg.Diagnostic, ...]
    files: tuple[str, ...]
    pipelines: tuple[PipelineSummary, ...]
    elves: int = 0

    @property
    def errors(self) -> list[dg.Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[dg.Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]

    def failed(self, strict: bool = False) -> bool:
        return bool(self.errors or (strict and self.warnings))


# --------------------------------------------------------------------------- finding files


def default_paths(cwd: Path) -> list[Path]:
    """``[tool.elfc] paths`` of the nearest pyproject.toml (relative to it), else ``cwd``."""
    pyproject = find_pyproject(cwd)
    if pyproject is not None:
        paths = elfc_table(pyproject).get("paths")
        if isinstance(paths, str):
            paths = [paths]
        if paths:
            return [pyproject.parent / p for p in paths]
    return [cwd]


def discover(paths: Iterable[str | Path], cwd: Path) -> list[Path]:
    """The Python files to check, in a stable order, each once.

    A file is always checked. A directory is searched recursively (hidden directories and
    ``SKIP_DIRS`` left out) for ``.py`` files that mention ``elfc``: a file that does not
    cannot define a pipeline, an elf or a handle, and importing every script of a project
    would run them. A dotted module name (``mypkg.pipelines``) is found on ``sys.path``.
    """
    found: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw) if Path(raw).is_absolute() else cwd / raw
        if path.is_file():
            found[path.resolve()] = None
        elif path.is_dir():
            found.update(dict.fromkeys(_walk(path.resolve())))
        else:  # a module importable from the current directory, as `python -m` sees it
            if str(cwd) not in sys.path:
                sys.path.insert(0, str(cwd))
            found.update(dict.fromkeys(_module_files(str(raw))))
    return list(found)


def _walk(folder: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS)
        for name in sorted(files):
            if name.endswith(".py"):
                path = Path(root) / name
                if _mentions_elfc(path):
                    yield path


def _mentions_elfc(path: Path) -> bool:
    try:
        return b"elfc" in path.read_bytes()
    except OSError:
        return False


def _module_files(name: str) -> list[Path]:
    if not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*", name):
        raise PathNotFound(f"{name}: no such file, directory or module")
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None:
        raise PathNotFound(f"{name}: no such file, directory or module")
    if spec.submodule_search_locations:
        return [p for loc in spec.submodule_search_locations for p in _walk(Path(loc).resolve())]
    return [Path(spec.origin).resolve()]


# --------------------------------------------------------------------------- checking


@dataclass
class _Checker:
    build: bool
    files: list[str] = field(default_factory=list)
    diagnostics: dict[tuple[str, int, int, str, str], dg.Diagnostic] = field(default_factory=dict)
    pipelines: list[PipelineSummary] = field(default_factory=list)
    seen: set[int] = field(default_factory=set)
    elves: int = 0
    used: dict[int, Handle] = field(default_factory=dict)
    """The handles the checked pipelines call, by id."""

    def add(self, diagnostics: Iterable[dg.Diagnostic]) -> None:
        for d in diagnostics:
            self.diagnostics.setdefault((d.path, d.line, d.column, d.code, d.message), d)

    def file(self, path: Path) -> None:
        self.files.append(str(path))
        module = self.load(path)
        if module is None:
            return
        for obj in list(vars(module).values()):
            if id(obj) in self.seen:
                continue
            if isinstance(obj, Pipeline) and _defined_in(obj.fn, module):
                self.seen.add(id(obj))
                self.pipeline(obj, path)
            elif is_elf(obj) and getattr(obj, "__module__", None) == module.__name__:
                self.seen.add(id(obj))
                self.elves += 1
                self.add(task_diagnostics(obj))

    def load(self, path: Path) -> ModuleType | None:
        try:
            return import_path(path)
        except SyntaxError as exc:
            self.add([_syntax_error(exc, path)])
        except (Exception, SystemExit, KeyboardInterrupt) as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            self.add([_import_error(exc, path)])
        return None

    def pipeline(self, p: Pipeline[Any, Any], module_path: Path) -> None:
        for h in _handles_named_by(p.fn):
            self.used[id(h)] = h
        try:
            compiled = p.compiled()
        except Exception as exc:  # a compiler bug: say so, and check the rest
            span = _fallback_span(p.fn, module_path)
            problem = f"{type(exc).__name__}: {exc}"
            self.add([dg.INTERNAL_ERROR.at(span, name=p.name, problem=problem)])
            self.pipelines.append(PipelineSummary(p.name, span.path, span.line, _call(p)))
            return
        self.add(_relocate(d, p, module_path) for d in compiled.diagnostics)
        for h in compiled.handles.values():
            self.used[id(h)] = h
        span = _fallback_span(p.fn, module_path)
        summary = PipelineSummary(p.name, span.path, span.line, _call(p))
        if self.build and compiled.template is not None and not compiled.errors:
            summary = self.built(p, summary)
        self.pipelines.append(summary)

    def built(self, p: Pipeline[Any, Any], summary: PipelineSummary) -> PipelineSummary:
        missing = _without_default(p.fn)
        if missing:
            return _replace(summary, why=f"`{missing}` has no default")
        try:
            run = p.compiled().build((), {})
        except Exception as exc:
            self.add([_build_error(exc, p, summary)])
            return _replace(summary, why=f"building it failed ({type(exc).__name__})")
        expanding = Counter(job.node for job in run.jobs if job.task in (EXPAND, CATCH))
        template = p.compiled().template
        made = {job.node for job in run.jobs}
        formula = job_formula(template, expanding, made) if template is not None else ""
        return _replace(
            summary,
            jobs=len(run.jobs) - sum(expanding.values()),
            regions=sum(expanding.values()),
            formula=formula,
        )

    def handles(self, checked: set[str]) -> None:
        """ELF114 and ELF202 over the handles made in the checked files and those the checked
        pipelines use (one per location: a module imported twice makes its handles twice)."""
        mine = [h for group in HANDLES.values() for h in group if _real(h.location[0]) in checked]
        relevant = {_location(h): h for h in (*mine, *self.used.values())}
        used_names = {h.name for h in self.used.values()}
        by_name: dict[str, list[Handle]] = {}
        for h in relevant.values():
            by_name.setdefault(h.name, []).append(h)
        for name, group in by_name.items():
            group.sort(key=_location)
            first = group[0]
            for other in group[1:]:
                what = _difference(first, other)
                if what and _real(other.location[0]) in checked:
                    self.add([_handle_conflict(first, other, what)])
            for h in group:
                if name not in used_names and _real(h.location[0]) in checked:
                    span = _call_span(h.location[0], h.location[1])
                    self.add([dg.UNUSED_HANDLE.at(span, name=name, cls=h.cls.__qualname__)])

    def registered(self, url: str, checked: set[str]) -> None:
        """ELF204: a handle of the checked files whose name the mycelium knows otherwise."""
        found = _registered_elves(url)
        if found is None:
            return
        shown_url, records = found
        for group in HANDLES.values():
            for h in group:
                record = records.get(h.name)
                if record is None or _real(h.location[0]) not in checked:
                    continue
                differs = registered_otherwise(record, h)
                if differs is None:
                    continue
                span = _call_span(h.location[0], h.location[1])
                theirs, mine = differs
                self.add(
                    [dg.REGISTERED_ELSEWHERE.at(
                        span, name=h.name, url=shown_url, theirs=theirs, mine=mine
                    )]
                )  # fmt: skip


def _registered_elves(url: str) -> tuple[str, dict[str, ElfRecord]] | None:
    """The elves registered in the mycelium at ``url``; None when it cannot be read (or does
    not exist yet: a check never creates one)."""
    from elfc.mycelium.urls import open_mycelium

    try:
        if url.startswith("sqlite:") and not _sqlite_exists(url):
            return None
        with open_mycelium(url) as store:
            return store.url, {r.name: r for r in store.list_elves()}
    except (ElfcError, OSError):
        return None


def _sqlite_exists(url: str) -> bool:
    prefix = "sqlite:///"  # sqlite:///relative.db or sqlite:////absolute.db
    return url.startswith(prefix) and Path(url[len(prefix) :].split("?", 1)[0]).is_file()


def check(
    paths: Sequence[str | Path] = (),
    *,
    build: bool = False,
    cwd: Path | None = None,
    mycelium: str | None = None,
) -> CheckResult:
    """Check the given files, directories or modules (default: ``default_paths(cwd)``).

    ``build``: also instantiate every pipeline whose parameters all have defaults, to count its
    jobs (running its static code); a failure is an ELF120 diagnostic.
    ``mycelium``: a URL whose registered elves the handles are compared with (ELF204).
    """
    cwd = (cwd or Path.cwd()).resolve()
    files = discover(paths or default_paths(cwd), cwd)
    checker = _Checker(build=build)
    # Compiling makes many short-lived acyclic objects: the cyclic collector only slows it.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for path in files:
            checker.file(path)
    finally:
        if collecting:
            gc.enable()
    checker.handles({_real(f) for f in checker.files})
    if mycelium:
        checker.registered(mycelium, {_real(f) for f in checker.files})
    return CheckResult(
        diagnostics=tuple(sorted(checker.diagnostics.values())),
        files=tuple(checker.files),
        pipelines=tuple(checker.pipelines),
        elves=checker.elves,
    )


# --------------------------------------------------------------------------- helpers


def _defined_in(fn: Any, module: ModuleType) -> bool:
    return getattr(fn, "__module__", None) == module.__name__


def _replace(summary: PipelineSummary, **changes: Any) -> PipelineSummary:
    from dataclasses import replace

    return replace(summary, **changes)


@functools.cache
def _real(path: str) -> str:
    return os.path.realpath(path)


def _location(h: Handle) -> tuple[str, int]:
    return (_real(h.location[0]), h.location[1])


def _call(p: Pipeline[Any, Any]) -> str:
    """``census(rounds=10)`` with the defaults, or ``census(rounds)`` for required ones."""
    try:
        params = inspect.signature(p.fn).parameters.values()
    except (TypeError, ValueError):
        return f"{p.fn.__name__}(...)"
    parts = []
    for param in params:
        if param.kind is param.VAR_POSITIONAL:
            continue
        if param.kind is param.VAR_KEYWORD:
            continue
        if param.default is param.empty:
            parts.append(param.name)
        else:
            parts.append(f"{param.name}={param.default!r}")
    return f"{p.fn.__name__}({', '.join(parts)})"


def _without_default(fn: Any) -> str | None:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    for param in params:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if param.default is param.empty:
            return param.name
    return None


def _handles_named_by(fn: Any) -> list[Handle]:
    """Handles a pipeline refers to by a global name (also when it does not compile)."""
    names: set[str] = set()
    stack = [getattr(fn, "__code__", None)]
    while stack:
        code = stack.pop()
        if code is None:
            continue
        names.update(code.co_names)
        stack.extend(c for c in code.co_consts if hasattr(c, "co_names"))
    scope = getattr(fn, "__globals__", {})
    return [v for n in names if isinstance(v := scope.get(n), Handle)]


def _difference(a: Handle, b: Handle) -> str:
    if (_source_file(a.cls), a.cls.__qualname__) != (_source_file(b.cls), b.cls.__qualname__):
        return "classes"
    if a.config != b.config:
        return "configurations"
    return ""


def _source_file(cls: type) -> str:
    try:
        return _real(inspect.getsourcefile(cls) or "")
    except (TypeError, OSError):
        return cls.__module__


def _handle_conflict(first: Handle, other: Handle, what: str) -> dg.Diagnostic:
    def describe(h: Handle) -> str:
        path, line = h.location
        return f"{h.cls.__qualname__}{_config_text(h)} at {_short(path)}:{line}"

    span = _call_span(other.location[0], other.location[1])
    return dg.HANDLE_CONFLICT.at(
        span, name=other.name, what=what, first=describe(first), second=describe(other)
    )


def _config_text(h: Handle) -> str:
    parts = [repr(a) for a in h.args] + [f"{k}={v!r}" for k, v in h.kwargs.items()]
    text = f"({', '.join(parts)})"
    return text if len(text) <= 60 else text[:57] + "...)"


def _short(path: str) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return path


@functools.lru_cache(maxsize=256)
def _file_tree(path: str) -> tuple[ast.Module | None, tuple[str, ...]]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None, ()
    lines = tuple(text.splitlines())
    try:
        return ast.parse(text), lines
    except SyntaxError:
        return None, lines


def _char_column(lines: Sequence[str], line: int, byte_offset: int) -> int:
    """1-based character column of a UTF-8 byte offset on ``line`` (ast counts bytes)."""
    return char_offset(lines[line - 1] if 0 < line <= len(lines) else "", byte_offset) + 1


def _line_span(path: str, line: int) -> Span:
    _, lines = _file_tree(path)
    text = _without_comment(lines[line - 1] if 0 < line <= len(lines) else "")
    start = len(text) - len(text.lstrip()) + 1
    return Span(path, max(line, 1), start, max(line, 1), max(len(text.rstrip()) + 1, start + 1))


def _without_comment(text: str) -> str:
    """``text`` without a trailing ``# comment`` (when no string on the line could hold a #)."""
    cut = text.find("#")
    if cut < 0 or any(q in text[:cut] for q in "'\""):
        return text
    return text[:cut]


def _call_span(path: str, line: int) -> Span:
    """The span of the ``named(...)`` call at ``line`` of ``path`` (else the line)."""
    tree, lines = _file_tree(path)
    best: ast.Call | None = None
    for node in ast.walk(tree) if tree is not None else ():
        if not isinstance(node, ast.Call) or not node.lineno <= line <= (node.end_lineno or 0):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        if name == "named" and (best is None or node.lineno >= best.lineno):
            best = node
    if best is None:
        return _line_span(path, line)
    end_line = best.end_lineno or best.lineno
    return Span(
        path,
        best.lineno,
        _char_column(lines, best.lineno, best.col_offset),
        end_line,
        _char_column(lines, end_line, best.end_col_offset or 0),
    )


def _fallback_span(fn: Any, module_path: Path) -> Span:
    """The ``def`` line of a pipeline's function, or where the module first names it."""
    code = getattr(fn, "__code__", None)
    path = getattr(code, "co_filename", "")
    if code is not None and not (path.startswith("<") and path.endswith(">")):
        _, lines = _file_tree(path)
        line = code.co_firstlineno
        while 0 < line <= len(lines) and lines[line - 1].lstrip().startswith("@"):
            line += 1
        return _line_span(path, line)
    return _mention_span(getattr(fn, "__name__", ""), str(module_path))


def _mention_span(name: str, path: str) -> Span:
    """For a function made by ``exec``: the first line of its module that defines or names it."""
    _, lines = _file_tree(path)
    for pattern in (rf"def\s+{re.escape(name)}\b", rf"\b{re.escape(name)}\b"):
        for number, text in enumerate(lines, 1):
            found = re.search(pattern, text)
            if found:
                return Span(path, number, found.start() + 1, number, found.end() + 1)
    return Span(path, 1, 1, 1, 1)


def _relocate(d: dg.Diagnostic, p: Pipeline[Any, Any], module_path: Path) -> dg.Diagnostic:
    """A diagnostic in a file Python does not keep (``<string>``) points into the module."""
    if not (d.path.startswith("<") and d.path.endswith(">")):
        return d
    span = _fallback_span(p.fn, module_path)
    return dg.Diagnostic(
        span.path, span.line, span.column, span.end_line, span.end_column,
        d.code, d.severity, d.message, d.help,
    )  # fmt: skip


def _syntax_error(exc: SyntaxError, path: Path) -> dg.Diagnostic:
    where = _real(exc.filename) if exc.filename else ""
    if where and where != _real(str(path)):  # in a module that this one imports
        return _import_error(exc, path)
    line = exc.lineno or 1
    column = exc.offset or 1
    end_line = exc.end_lineno or line
    end_column = exc.end_offset if exc.end_offset and exc.end_offset > column else column + 1
    if end_line != line:
        end_line, end_column = line, column + 1
    span = Span(str(path), line, column, end_line, end_column)
    return dg.SYNTAX_OR_IMPORT.at(
        span,
        problem=f"syntax error: {exc.msg}",
        fix="fix the syntax; the module cannot be imported, so nothing in it was checked",
    )


def _import_error(exc: BaseException, path: Path) -> dg.Diagnostic:
    span, elsewhere = _raise_site(exc.__traceback__, str(path))
    problem = f"importing the module raised {type(exc).__name__}: {exc}"
    if isinstance(exc, SyntaxError) and exc.filename:
        problem = (
            f"importing the module failed: syntax error in {_short(exc.filename)}:"
            f"{exc.lineno}: {exc.msg}"
        )
    elif elsewhere:
        problem += f" (raised in {elsewhere})"
    return dg.SYNTAX_OR_IMPORT.at(
        span or Span(str(path), 1, 1, 1, 2),
        problem=problem,
        fix="fix the error so the module imports; nothing in it was checked",
    )


def _raise_site(tb: TracebackType | None, path: str) -> tuple[Span | None, str]:
    """The exact span of the deepest frame in ``path`` (the expression being evaluated), and
    where the error was finally raised when that is another file."""
    real = _real(path)
    span: Span | None = None
    last = ""
    while tb is not None:
        code = tb.tb_frame.f_code
        if _real(code.co_filename) == real:
            span = _frame_span(code, tb.tb_lasti, tb.tb_lineno, path)
            last = ""
        elif "importlib" not in code.co_filename:
            last = f"{_short(code.co_filename)}:{tb.tb_lineno}"
        tb = tb.tb_next
    return span, last


def _frame_span(code: Any, lasti: int, line: int, path: str) -> Span:
    positions = list(code.co_positions())
    index = lasti // 2
    if 0 <= index < len(positions):
        start, end, col, end_col = positions[index]
        if start == line and end is not None and col is not None and end_col is not None:
            _, lines = _file_tree(path)
            return Span(
                path,
                start,
                _char_column(lines, start, col),
                end,
                _char_column(lines, end, end_col),
            )
    return _line_span(path, line)


def _build_error(exc: Exception, p: Pipeline[Any, Any], summary: PipelineSummary) -> dg.Diagnostic:
    # The builder is compiled from rewritten source: its lines are the file's, its columns not.
    site, _ = _raise_site(exc.__traceback__, summary.path)
    span = _line_span(summary.path, site.line if site else summary.line)
    return dg.BUILD_FAILED.at(span, call=summary.call, problem=f"{type(exc).__name__}: {exc}")


# --------------------------------------------------------------------------- mypy

_MYPY_LINE = re.compile(
    r"^(?P<path>.+?):(?:(?P<line>\d+):(?:(?P<col>\d+):(?:(?P<end_line>\d+):(?P<end_col>\d+):)?)?)?"
    r" (?P<severity>error|warning|note): (?P<message>.*?)(?:  \[(?P<code>[\w-]+)\])?$"
)


def mypy_config(cwd: Path) -> Path | None:
    """The nearest mypy configuration file, looking up from ``cwd``."""
    for folder in (cwd, *cwd.parents):
        for name in ("mypy.ini", ".mypy.ini"):
            if (folder / name).is_file():
                return folder / name
        pyproject = folder / PYPROJECT
        if pyproject.is_file() and re.search(
            r"^\[tool\.mypy\]", pyproject.read_text(encoding="utf-8", errors="replace"), re.M
        ):
            return pyproject
        setup_cfg = folder / "setup.cfg"
        if setup_cfg.is_file() and re.search(
            r"^\[mypy\]", setup_cfg.read_text(encoding="utf-8", errors="replace"), re.M
        ):
            return setup_cfg
    return None


def run_mypy(paths: Sequence[str | Path], cwd: Path) -> list[dg.Diagnostic]:
    """mypy's errors on ``paths`` as diagnostics with the code ``mypy`` (notes left out)."""
    try:
        from mypy import api
    except ImportError as exc:
        raise ElfcError("--mypy needs mypy: pip install mypy (or 'elfc[dev]')") from exc
    args = [
        "--show-column-numbers",
        "--show-error-end",
        "--show-error-codes",
        "--no-error-summary",
        "--no-pretty",
        "--no-color-output",
        "--show-absolute-path",
    ]
    config = mypy_config(cwd)
    if config is not None:
        args += ["--config-file", str(config)]
    stdout, stderr, status = api.run([*args, *(str(p) for p in paths)])
    out = parse_mypy(stdout)
    if status not in (0, 1) or (status == 1 and not out):
        message = (stderr or stdout).strip().splitlines() or [f"mypy exited with {status}"]
        span = Span(str(paths[0]) if paths else str(cwd), 1, 1, 1, 1)
        out.append(_mypy_diagnostic(span, "error", message[-1], None))
    return out


def parse_mypy(output: str) -> list[dg.Diagnostic]:
    out = []
    for text in output.splitlines():
        found = _MYPY_LINE.match(text)
        if found is None or found["severity"] == "note":
            continue
        line = int(found["line"] or 1)
        col = int(found["col"] or 1)
        end_line = int(found["end_line"] or line)
        end_col = int(found["end_col"] or col)
        if (end_line, end_col) <= (line, col):
            end_line, end_col = line, col + 1
        span = Span(found["path"], line, col, end_line, end_col)
        out.append(_mypy_diagnostic(span, found["severity"], found["message"], found["code"]))
    return out


def _mypy_diagnostic(span: Span, severity: str, message: str, code: str | None) -> dg.Diagnostic:
    return dg.Diagnostic(
        span.path, span.line, span.column, span.end_line, span.end_column,
        "mypy", "error" if severity == "error" else "warning",
        f"{message} [{code}]" if code else message,
        "reported by mypy" + (f" (error code `{code}`)" if code else "")
        + "; run mypy itself for its notes and context",
    )  # fmt: skip


def job_formula(template: Template, expansions: Mapping[str, int], made: set[str]) -> str:
    """The jobs that the expansions of a run add, as a formula: ``n·len(x)`` per loop over a
    result ``x`` (``n`` jobs per element), ``(a or b)`` per branch, ``n per poll`` per
    ``while``, ``(0 or n)`` per ``try`` (its handlers), ``1`` per call on results.
    ``expansions``: region id -> how many expansion jobs of it the submission made;
    ``made``: the nodes the submission made jobs of. Empty when the count has no formula (a
    branch that returns takes the rest of the pipeline with it)."""
    regions = {r.id: r for r in template.regions}

    def dynamic_above(rid: str | None) -> bool:
        while rid is not None and rid in regions:
            if regions[rid].dynamic:
                return True
            rid = regions[rid].parent
        return False

    if any(
        isinstance(n, CallNode) and n.id not in made and not dynamic_above(n.region)
        for n in template.nodes
    ):
        return ""
    children: dict[str | None, list[Region]] = {}
    for r in template.regions:
        children.setdefault(r.parent, []).append(r)
    direct: Counter[str | None] = Counter()
    calls: set[str] = set()
    for n in template.nodes:
        if isinstance(n, CallNode):
            direct[n.region] += 1
        elif isinstance(n, DeriveNode) and isinstance(n.expr, dict) and "out" in n.expr:
            calls.add(n.id)  # a call region: one job where it sits
            direct[n.region] += 1

    def inner(rid: str) -> str:
        terms = [str(direct[rid])]
        for child in children.get(rid, []):
            if child.kind == "loop":
                terms.append(f"{_paren(inner(child.id))}·k")
            elif child.kind in ("then", "else", "except"):
                continue
            else:
                terms.append(term(child))
        return _plus(terms)

    def term(r: Region) -> str:
        body = inner(r.id)
        if r.kind in ("for", "comp"):
            iterable = r.header.partition(" in ")[2] or "…"
            return f"len({iterable})" if body == "1" else f"{_paren(body)}·len({iterable})"
        if r.kind == "while":
            return f"{_paren(body)} per poll"
        arms = [inner(a.id) for a in children.get(r.id, []) if a.kind in ("then", "else")]
        if r.kind == "if":
            if len(arms) < 2:
                arms.append("0")
            return _either([_plus([body, a]) for a in arms])
        if r.kind == "try":
            handlers = [inner(a.id) for a in children.get(r.id, []) if a.kind == "except"]
            return _either([body, *handlers])  # its `else` (no failure), or a handler
        return body

    parts = []
    for rid, count in expansions.items():
        if rid in calls:
            parts.append(str(count))
            continue
        found = regions.get(rid.rsplit("/", 1)[-1])
        if found is None:
            continue
        r = found
        t = term(r)
        parts.append(t if count == 1 else f"{count}·{_paren(t)}")
    return _plus(parts)


def _either(options: list[str]) -> str:
    """``(a or b)``: the jobs of one of several paths (one term when they agree)."""
    unique = list(dict.fromkeys(options))
    return unique[0] if len(unique) == 1 else f"({' or '.join(unique)})"


def _plus(terms: Iterable[str]) -> str:
    kept = [t for t in terms if t != "0"]
    numbers = [t for t in kept if t.isdigit()]
    rest = [t for t in kept if not t.isdigit()]
    total = sum(int(t) for t in numbers)
    return " + ".join(([str(total)] if total else []) + rest) or "0"


def _paren(text: str) -> str:
    return text if text.isdigit() or text.startswith("(") else f"({text})"
