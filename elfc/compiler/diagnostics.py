"""Diagnostic kinds (stable codes), diagnostics, and their text and JSON renderings.

A kind is a small class-like record: a code (``ELF1xx`` errors, ``ELF2xx`` warnings), a short
name, a one-line message template and a fix-it hint. Checkers only call ``Kind.at(span, ...)``;
rendering lives here. Tests assert which codes a snippet produces, not message text.
"""

from __future__ import annotations

import linecache
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from elfc.errors import Diagnostic as Diagnostic  # re-exported: kinds make diagnostics
from elfc.errors import Severity
from elfc.model.ir import Span
from elfc.model.ops import BUILTINS


@dataclass(frozen=True)
class Kind:
    code: str
    name: str
    template: str
    help: str

    @property
    def severity(self) -> Severity:
        return "error" if self.code.startswith("ELF1") else "warning"

    def at(self, span: Span, help: str | None = None, **fields: Any) -> Diagnostic:
        """A diagnostic of this kind at ``span``; ``fields`` fill the templates."""
        return Diagnostic(
            code=self.code,
            severity=self.severity,
            message=self.template.format(**fields),
            help=(help if help is not None else self.help.format(**fields)),
            path=span.path,
            line=span.line,
            column=span.column,
            end_line=span.end_line,
            end_column=span.end_column,
        )


KINDS: dict[str, Kind] = {}


def _kind(code: str, name: str, template: str, help: str) -> Kind:
    kind = Kind(code, name, template, help)
    assert code not in KINDS, code
    KINDS[code] = kind
    return kind


CALL_WITH_DYNAMIC = _kind(
    "ELF101",
    "call-with-dynamic",
    "`{func}` is called with {what}, a task result that only exists when the run executes",
    "move this call into a @task of an elf and pass {what} to it; only the pure builtins "
    f"{' '.join(sorted(BUILTINS))} and the pure methods of str, bytes, list, tuple, dict, set, "
    "datetime, date, timedelta and Decimal can take task results inside a pipeline",
)
METHOD_ON_DYNAMIC = _kind(
    "ELF102",
    "method-on-dynamic",
    "method `.{method}()` is called on {what}, a task result that only exists when the run executes",
    "do this inside a @task (e.g. a task taking {what} and returning the result of "
    "`.{method}()`), or use an operator, subscript or pure builtin",
)
BRANCH_ON_DYNAMIC = _kind(
    "ELF103",
    "branch-on-dynamic",
    "`{construct}` depends on {what}, a task result: the graph must be known at submission",
    "decide or loop inside a @task (e.g. pass {what} to a task that does both cases), or "
    "branch on a pipeline argument or another static value",
)
LOOP_OVER_DYNAMIC = _kind(
    "ELF104",
    "loop-over-dynamic",
    "`{construct}` iterates over {what}, a task result whose length is unknown at submission",
    "loop over a static value (a pipeline argument, range(n), a literal list), or move the loop "
    "into a @task that takes {what}",
)
UNSUPPORTED_STATEMENT = _kind(
    "ELF105",
    "unsupported-statement",
    "`{construct}` is not allowed in a pipeline body",
    "{fix}",
)
CAPTURES_DYNAMIC = _kind(
    "ELF106",
    "captures-dynamic",
    "{construct} captures {what}, a task result; it would run at submission, before the result exists",
    "move the function into a @task and pass {what} to it",
)
MUTATES_DYNAMIC = _kind(
    "ELF107",
    "mutates-dynamic",
    "{construct} mutates {what}, a task result; results are immutable values in a pipeline",
    "build a new value instead (a new list or dict, or `x = x + ...`), or mutate inside a @task",
)
NOT_A_TASK = _kind(
    "ELF108",
    "not-a-task",
    "`{handle}.{method}` is not a @task of {cls}",
    "decorate `{cls}.{method}` with @task, or call one of its tasks: {tasks}",
)
TASK_ON_LOCAL_ELF = _kind(
    "ELF109",
    "task-on-local-elf",
    "task `{method}` is called on {what}, not on a handle",
    'create a module-level handle, `worker = named({cls}, "worker", ...)`, and call '
    "`worker.{method}(...)` in the pipeline",
)
BAD_TASK_ARGUMENTS = _kind(
    "ELF110",
    "bad-task-arguments",
    "{call}: {problem}",
    "the task's signature is {signature}",
)
UNKNOWN_MEMBER = _kind(
    "ELF111",
    "unknown-member",
    "{problem}",
    "use one of the declared fields, or change the return annotation of {producer}",
)
TYPE_MISMATCH = _kind(
    "ELF112",
    "type-mismatch",
    "{problem} (argument `{param}` of {consumer}, from {producer})",
    "change the producer's return annotation or the consumer's parameter so they agree",
)
UNCROSSABLE = _kind(
    "ELF113",
    "uncrossable-annotation",
    "{where}: {problem}",
    "annotate with JSON-encodable types: builtins, list/dict/tuple/set, Optional/Union, Literal, "
    "TypedDict, dataclass, NamedTuple, Enum, datetime/date/UUID/Decimal/bytes, msgspec.Struct",
)
HANDLE_CONFLICT = _kind(
    "ELF114",
    "handle-conflict",
    "the elf name {name!r} is used by two handles with different {what}",
    "give each elf instance its own name, or make both handles identical ({first} and {second})",
)
SOURCE_UNAVAILABLE = _kind(
    "ELF115",
    "source-unavailable",
    "the source of pipeline `{name}` is unavailable: {why}",
    "define pipelines with `def` in a module file (not in a REPL, by exec, or as a lambda)",
)
SYNTAX_OR_IMPORT = _kind(
    "ELF116",
    "import-failed",
    "{problem}",
    "{fix}",
)
DYNAMIC_MISPLACED = _kind(
    "ELF117",
    "dynamic-misplaced",
    "{what} is used where a value must be known at submission: {where}",
    "{fix}",
)
ASYNC_PIPELINE = _kind(
    "ELF118",
    "async-pipeline",
    "pipeline `{name}` is `async def`; pipelines are plain functions",
    "remove `async`: task calls in a pipeline already run concurrently as jobs",
)
RECURSIVE_PIPELINE = _kind(
    "ELF119",
    "recursive-pipeline",
    "pipeline `{name}` calls itself (through {chain}); inlining would never end",
    "unroll the recursion with a static loop",
)
BUILD_FAILED = _kind(
    "ELF120",
    "build-failed",
    "`{call}` cannot be submitted: its static code raised {problem}",
    "static code (loops, helpers, arguments) runs at submission exactly as Python; fix the line "
    "above, or give the parameters defaults that work",
)
LAZY_ITERABLE = _kind(
    "ELF121",
    "iterator-argument",
    "`{construct}` is an iterator; {target} needs a list, tuple, set or dict",
    "build a list instead: `[...]` rather than a generator `(...)`, `list(...)` around the "
    "iterator, or a dict comprehension `{{k: v for ...}}` rather than `dict(zip(...))`",
)
BAD_OPERATION = _kind(
    "ELF122",
    "bad-operation",
    "`{expr}` would raise TypeError when the run executes: {problem}",
    "convert an operand first (e.g. add `timedelta(days=n)` to a datetime, not `n`), or change "
    "the return annotation of {producer}",
)
RETURN_MISMATCH = _kind(
    "ELF123",
    "return-mismatch",
    "{problem} (the result of pipeline `{name}`, from {producer})",
    "change the pipeline's return annotation or what it returns so they agree",
)
REGION_UNSUPPORTED = _kind(
    "ELF124",
    "region-unsupported",
    "`{construct}` decides on a task result {problem}: the graph cannot give that Python's meaning",
    "{fix}",
)
INTERNAL_ERROR = _kind(
    "ELF199",
    "internal-error",
    "the compiler failed on pipeline `{name}`: {problem}",
    "this is a bug in elfc, not in your pipeline; please report it with the pipeline's source",
)
UNUSED_RESULT = _kind(
    "ELF201",
    "unused-result",
    "the result of `{call}` is never used",
    "use the value, or assign it to `_` to say it is unused on purpose",
)
UNUSED_HANDLE = _kind(
    "ELF202",
    "unused-handle",
    "handle {name!r} ({cls}) is not used by any pipeline",
    "remove it, or call its tasks from a pipeline (workers for it would sit idle)",
)
REGISTERED_ELSEWHERE = _kind(
    "ELF204",
    "elf-registered-elsewhere",
    "elf {name!r} is registered in {url} as {theirs}; this handle defines it as {mine}",
    "give this elf instance another name: submitting would be refused while workers of the "
    "registered definition run",
)
UNBOUNDED_LOOP = _kind(
    "ELF203",
    "unbounded-loop",
    "the number of jobs made by `{construct}` cannot be bounded before submission: {why}",
    "iterate over something finite (range(n), a list, a pipeline argument), and check how many "
    "jobs a pipeline makes with `elfc check -v`",
)


_TAB = 8
_COLORS = {"red": "31", "yellow": "33", "blue": "34", "bold": "1"}


def _paint(text: str, color: str) -> str:
    return f"\x1b[{_COLORS[color]}m{text}\x1b[0m"


def _plain(text: str, color: str) -> str:
    return text


def _caret_range(text: str, d: Diagnostic, length: int) -> tuple[int, int]:
    """Display columns (tabs expanded) of the span on its first line, end exclusive."""
    begin = min(max(d.column - 1, 0), length)
    end = min(max(d.end_column - 1, begin + 1), length) if d.end_line == d.line else length
    if begin >= length:  # a span at the end of the line (e.g. a missing colon)
        end = begin + 1
    indent = len(text[:begin].expandtabs(_TAB))
    return indent, indent + len(text[begin:end].expandtabs(_TAB))


def render_diagnostic(d: Diagnostic, source_line: str | None = None, *, color: bool = False) -> str:
    """``path:line:col: CODE message``, the source line with a caret, then ``help:``::

    animals.py:12:9: ELF101 `plain` is called with `m`, a task result ...
       |
    12 |     y = plain(m)
       |         ^^^^^^^^
       = help: move this call into a @task ...
    """
    paint = _paint if color else _plain
    tone = "red" if d.severity == "error" else "yellow"
    code = paint(d.code, tone)
    out = [f"{paint(f'{d.path}:{d.line}:{d.column}:', 'bold')} {code} {d.message}"]
    if source_line is None:
        source_line = linecache.getline(d.path, d.line) if d.line > 0 else ""
    text = source_line.rstrip("\r\n")
    width = len(str(d.line))
    bar = paint(" " * width + " |", "blue")
    if text.strip():
        start, stop = _caret_range(text, d, len(text))
        shown = text.expandtabs(_TAB)
        out.append(bar)
        out.append(f"{paint(f'{d.line} |', 'blue')} {shown}")
        carets = " " * start + "^" * max(1, stop - start)
        if d.end_line > d.line:
            carets += " ..."
        out.append(f"{bar} {paint(carets, tone)}")
    out.append(f"{paint(' ' * width + ' =', 'blue')} {paint('help:', 'bold')} {d.help}")
    return "\n".join(out)


def render_json(diagnostics: Sequence[Diagnostic]) -> str:
    """A JSON list of objects: path, line, column, end_line, end_column, code, severity,
    message, help."""
    return msgspec.json.encode([d.to_dict() for d in diagnostics]).decode()
