"""Static metadata of elves and tasks: source, docstring, signature, type hints, revision.

A revision hashes a normalized syntax tree (``ast.dump`` without positions, docstrings
removed), so reformatting or editing comments and docstrings keeps it, while any change in
behaviour changes it.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
import typing
from dataclasses import dataclass, field
from typing import Any

from elfc.decorators import TASK_ATTR, TaskOptions, task_names
from elfc.model.ir import revision_of
from elfc.model.modules import importable_name


@dataclass(frozen=True)
class TaskInfo:
    name: str
    qualname: str
    module: str
    options: TaskOptions
    signature: inspect.Signature
    hints: dict[str, Any]
    """Resolved annotations (``return`` included); missing ones are absent."""
    source: str
    doc: str
    revision: str
    problems: tuple[str, ...] = ()
    """Why a parameter or the return cannot cross a process (empty when fine)."""

    @property
    def params(self) -> list[inspect.Parameter]:
        return list(self.signature.parameters.values())[1:]


@dataclass(frozen=True)
class ElfInfo:
    cls: type
    qualname: str
    module: str
    source: str
    doc: str
    revision: str
    tasks: dict[str, TaskInfo] = field(default_factory=dict)


def normalized_revision(source: str, tree: ast.Module | None = None) -> str:
    """Revision of a piece of source: its syntax tree without positions and docstrings.

    ``tree``, when given, is ``ast.parse`` of ``source`` already made (it is modified).
    """
    if tree is None:
        try:
            tree = ast.parse(textwrap.dedent(source))
        except SyntaxError:
            return revision_of(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Module):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return revision_of(ast.dump(tree, annotate_fields=False))


def _source(obj: Any) -> str:
    try:
        return textwrap.dedent(inspect.getsource(obj))
    except (OSError, TypeError):
        return ""


_ELVES: dict[type, ElfInfo] = {}


def elf_info(cls: type) -> ElfInfo:
    """Metadata of an ``@elf`` class (computed once per class per process)."""
    info = _ELVES.get(cls)
    if info is None:
        info = _ELVES[cls] = _make_elf_info(cls)
    return info


def _make_elf_info(cls: type) -> ElfInfo:
    source = _source(cls)
    tasks = {name: _task_info(cls, name) for name in task_names(cls)}
    revision = revision_of(
        normalized_revision(source) if source else cls.__qualname__,
        *(t.revision for t in tasks.values()),
    )
    return ElfInfo(
        cls=cls,
        qualname=cls.__qualname__,
        module=importable_name(cls.__module__),
        source=source,
        doc=inspect.getdoc(cls) or "",
        revision=revision,
        tasks=tasks,
    )


def _task_info(cls: type, name: str) -> TaskInfo:
    fn = inspect.getattr_static(cls, name)
    options: TaskOptions = getattr(fn, TASK_ATTR)
    source = _source(fn)
    problems: list[str] = []
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:  # any error evaluating annotations is the user's to see
        hints = {}
        problems.append(f"its annotations cannot be resolved: {type(exc).__name__}: {exc}")
    signature = inspect.signature(fn)
    problems.extend(_signature_problems(signature, hints))
    return TaskInfo(
        name=name,
        qualname=f"{cls.__qualname__}.{name}",
        module=importable_name(cls.__module__),
        options=options,
        signature=signature,
        hints=hints,
        source=source,
        doc=inspect.getdoc(fn) or "",
        revision=normalized_revision(source) if source else revision_of(cls.__qualname__, name),
        problems=tuple(problems),
    )


def _signature_problems(signature: inspect.Signature, hints: dict[str, Any]) -> list[str]:
    from elfc.compiler.typerules import crossing_problem

    problems = []
    params = list(signature.parameters.values())[1:]
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.name not in hints:
            problems.append(f"parameter `{p.name}` has no annotation")
            continue
        why = crossing_problem(hints[p.name])
        if why:
            problems.append(f"parameter `{p.name}`: {why}")
    if "return" not in hints:
        problems.append("the return type is not annotated")
    else:
        why = crossing_problem(hints["return"])
        if why:
            problems.append(f"the return type: {why}")
    return problems
