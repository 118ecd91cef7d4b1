"""The analysis dispatches each libcst node through tables built when its class is created."""

from __future__ import annotations

import libcst as cst
import pytest

from elfc.compiler.analysis import Analyzer
from elfc.compiler.analysis.core import Core


def test_each_handler_is_in_its_table_under_the_node_type_it_names() -> None:
    for prefix, table in (
        ("st_", Analyzer.statement_handlers),
        ("ex_", Analyzer.expression_handlers),
    ):
        names = {n for n in dir(Analyzer) if n.startswith(prefix)}
        assert {prefix + t.__name__ for t in table} == names
        for node_type, handler in table.items():
            assert issubclass(node_type, cst.CSTNode)
            assert getattr(Analyzer, prefix + node_type.__name__) is handler
    assert Analyzer.statement_handlers[cst.Break] is Analyzer.st_Pass
    assert Analyzer.expression_handlers[cst.Tuple] is Analyzer.ex_List


def test_a_handler_named_after_no_node_type_fails_when_the_class_is_made() -> None:
    with pytest.raises(TypeError, match=r"Broken\.ex_Lisst: libcst has no node type 'Lisst'"):

        class Broken(Core):
            def ex_Lisst(self, node: cst.List) -> None: ...
