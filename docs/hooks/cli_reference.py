"""MkDocs hook: the command-line reference is written from elfc's own argparse parsers at build
time (`elfc COMMAND --help` for every command), so the page cannot drift from the program."""

from __future__ import annotations

import argparse
import os
from typing import Any

MARKER = "<!-- elfc-cli-reference -->"
WIDTH = "100"


def reference() -> str:
    """The reference as Markdown: the top-level help, then one section per command."""
    from elfc.cli.main import COMMANDS, build_parser

    before = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH  # argparse wraps at the terminal's width
    try:
        parser = build_parser(COMMANDS.keys())
        parts = ["## elfc", "", "```text", parser.format_help().rstrip(), "```", ""]
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        for name, command in sub.choices.items():
            parts += [f"## elfc {name}", "", "```text", command.format_help().rstrip(), "```", ""]
    finally:
        if before is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = before
    return "\n".join(parts)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """MkDocs' hook: fill the marker of the CLI reference page."""
    if MARKER in markdown:
        return markdown.replace(MARKER, reference())
    return markdown
