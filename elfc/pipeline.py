"""``@pipeline`` and ``Pipeline``: the user's entry point to a compiled pipeline.

A ``Pipeline`` compiles its function on first use (``elfc.compiler``), runs the whole graph in
this process when called (``elfc.runtime.local``), and submits runs to a mycelium
(``elfc.runtime.client``). It sits above both: the compiler recognises a pipeline by the
marker ``decorators.PIPELINE_ATTR``, never by importing this module.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ClassVar, Generic, ParamSpec, TypeVar, cast, overload

from elfc.compiler.compile import Compiled, compiled_for
from elfc.compiler.diagnostics import Diagnostic
from elfc.decorators import pipeline_name
from elfc.model.ir import BuiltRun, Template
from elfc.runtime.client import connect
from elfc.runtime.local import run_local
from elfc.runtime.run import Run

__all__ = ["Pipeline", "pipeline"]

P = ParamSpec("P")
R = TypeVar("R")


class Pipeline(Generic[P, R]):
    """A compiled pipeline. Call it to run in this process; ``.submit`` to run on a mycelium."""

    __elfc_pipeline__: ClassVar[bool] = True
    """The marker ``decorators.pipeline_function`` looks for."""

    def __init__(self, fn: Callable[P, R]) -> None:
        self.fn = fn
        self.name = pipeline_name(fn)
        functools.update_wrapper(self, fn)
        self._compiled: Compiled | None = None

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the whole graph in this process (elves built locally), e.g. ``census(rounds=3)``."""
        return cast(R, run_local(self.compiled(), args, kwargs))

    def submit(self, *args: P.args, **kwargs: P.kwargs) -> Run[R]:
        """Submit a run to the default mycelium; workers pick it up. ``census.submit(rounds=3)``."""
        return connect().submit(self, *args, **kwargs)

    def compiled(self) -> Compiled:
        """Compile on first use; later calls return the same result."""
        # Kept on the instance too: an attribute read costs half the WeakKeyDictionary lookup
        # of compiled_for, and compiled() is on the path of every call and submission.
        compiled = self._compiled
        if compiled is None:
            compiled = self._compiled = compiled_for(self.fn)
        return compiled

    def graph(self) -> Template:
        """The compiled graph template (raises ``CompileError`` if the pipeline is invalid)."""
        template = self.compiled().require().template
        assert template is not None  # require() guarantees it
        return template

    def check(self) -> list[Diagnostic]:
        """Every diagnostic the compiler has for this pipeline (errors and warnings)."""
        return list(self.compiled().diagnostics)

    def build(self, *args: P.args, **kwargs: P.kwargs) -> BuiltRun:
        """Instantiate the template with these arguments into the run's jobs (nothing runs)."""
        return self.compiled().require().build(args, kwargs)

    def __repr__(self) -> str:
        return f"<pipeline {self.name}>"


@overload
def pipeline(fn: Callable[P, R], /) -> Pipeline[P, R]: ...


@overload
def pipeline(
    *, max_iterations: int | None = None, max_elements: int | None = None
) -> Callable[[Callable[P, R]], Pipeline[P, R]]: ...


def pipeline(
    fn: Callable[P, R] | None = None,
    /,
    *,
    max_iterations: int | None = None,
    max_elements: int | None = None,
) -> Pipeline[P, R] | Callable[[Callable[P, R]], Pipeline[P, R]]:
    """Make ``fn`` a pipeline: its body is compiled into a graph of jobs, never traced.

    Usage::

        @pipeline
        def census(rounds: int = 10) -> list[int]:
            return [store.save(animals.measure()["weight"]) for _ in range(rounds)]

    ``@pipeline(max_iterations=..., max_elements=...)`` sets the bounds of its dynamic
    regions: how many iterations a ``while`` on a task result may make (default 1,000) and
    how many elements one loop over a task result may expand (default 100,000).
    """
    for name, value in (("max_iterations", max_iterations), ("max_elements", max_elements)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise TypeError(f"@pipeline({name}=...) takes a positive int, not {value!r}")

    def wrap(f: Callable[P, R]) -> Pipeline[P, R]:
        if isinstance(f, Pipeline):
            return f
        if not callable(f):
            raise TypeError(f"@pipeline decorates a function, not {f!r}")
        if max_iterations is not None:
            f.__elfc_max_iterations__ = max_iterations  # type: ignore[attr-defined]
        if max_elements is not None:
            f.__elfc_max_elements__ = max_elements  # type: ignore[attr-defined]
        return Pipeline(f)

    return wrap if fn is None else wrap(fn)
