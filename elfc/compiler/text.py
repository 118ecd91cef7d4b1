"""A function's source text and where it sits in its file (no parsing: cheap to import)."""

from __future__ import annotations

import linecache
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from elfc.errors import SourceUnavailable
from elfc.model.ir import Span


def char_offset(text: str, byte_offset: int) -> int:
    """The 0-based character offset in one line of ``text`` of a UTF-8 byte offset.

    ``ast`` reports columns in UTF-8 bytes; spans and carets are in characters. A byte offset
    inside a multi-byte character counts that character.
    """
    if text.isascii():
        return byte_offset
    return len(text.encode()[:byte_offset].decode(errors="replace"))


@dataclass(frozen=True)
class FunctionSource:
    """The dedented text of one function and where it sits in its file."""

    path: str
    text: str
    first_line: int
    """1-based file line of the text's first line (the first decorator, or ``def``)."""
    indent: int
    """Columns removed by dedenting."""

    def span(self, line: int, col: int, end_line: int, end_col: int) -> Span:
        """A file span from 1-based lines and 0-based columns within ``text``."""
        return Span(
            self.path,
            line + self.first_line - 1,
            col + self.indent + 1,
            end_line + self.first_line - 1,
            end_col + self.indent + 1,
        )


def function_source(fn: Callable[..., Any]) -> FunctionSource:
    """Extract ``fn``'s source from its file, from the first decorator to the body's last line."""
    code = getattr(fn, "__code__", None)
    if code is None:
        raise SourceUnavailable(f"{fn!r} is not a Python function")
    if fn.__name__ == "<lambda>":
        raise SourceUnavailable("a lambda has no statements to compile")
    path = code.co_filename
    if path.startswith("<") and path.endswith(">"):
        raise SourceUnavailable(f"it was defined in {path}, whose source Python does not keep")
    lines = linecache.getlines(path, fn.__globals__)
    if not lines:
        raise SourceUnavailable(f"its file {path} cannot be read")
    first = code.co_firstlineno
    last = max((pos[1] for pos in code.co_positions() if pos[1] is not None), default=first)
    if first < 1 or last > len(lines):
        raise SourceUnavailable(f"{path} changed since it was imported")
    chunk = lines[first - 1 : last]
    text = "".join(chunk)
    if not text.endswith("\n"):
        text += "\n"
    dedented = textwrap.dedent(text)
    indent = len(chunk[0]) - len(chunk[0].lstrip()) if dedented != text else 0
    head = dedented.lstrip()
    if not (head.startswith("@") or head.startswith("def ") or head.startswith("async def ")):
        raise SourceUnavailable(f"line {first} of {path} does not start a function definition")
    return FunctionSource(path, dedented, first, indent)


# libcst node type -> the ast node types it pairs with, one to one, in source order.
