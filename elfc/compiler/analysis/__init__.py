"""Binding-time analysis of a pipeline body, over its libcst tree.

Every expression is *static* (known at submission: arguments, literals, globals, plain calls
on static values), a *static structure* (a container built at submission whose elements may be
task results, e.g. ``parts`` after ``parts.append(elf.task(i))``), or *dynamic* (depends on a
task result). One walk over the function collects, per libcst node, what the builder must do
with it (a task call, a derive, an inlined pipeline, a loop region) and reports every
construct outside DESIGN §3 as a diagnostic. Loop bodies are walked until the bindings they
produce are stable.

The walk is split by concern, one mixin of :class:`Analyzer` per module:

- ``values``: what is known about a value (``Val``, its binding time, ``join``) and what the
  analysis returns (``Analysis``, ``Rewrite``);
- ``core``: the walk's shared state (environment, region, ids, diagnostics), node and edge
  bookkeeping, and the dispatch tables (node type -> ``st_*``/``ex_*`` handler), built once
  per class;
- ``statements``: each statement, assignment targets, loops and their regions;
- ``expressions``: each expression, derives and their IR;
- ``calls``: calls of builtins, methods, tasks, elves and inlined pipelines.
"""

from __future__ import annotations

from elfc.compiler.analysis.calls import Calls
from elfc.compiler.analysis.expressions import Expressions
from elfc.compiler.analysis.statements import Statements
from elfc.compiler.analysis.values import Analysis, Rewrite

__all__ = ["Analysis", "Analyzer", "Rewrite"]


class Analyzer(Statements, Expressions, Calls):
    """The analysis of one pipeline: ``Analyzer(fn, source, module, fndef, positions).run()``."""
