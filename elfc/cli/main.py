"""The ``elfc`` command: check, graph, run, submit, worker, and inspection commands."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from elfc._version import __version__
from elfc.errors import ElfcError

# command name -> module in elfc.cli.commands with `configure(parser)` and `run(args) -> int`
COMMANDS: dict[str, tuple[str, str]] = {
    "check": ("check", "validate every pipeline statically, before deploy"),
    "graph": ("graph", "draw a pipeline's graph (dot, mermaid, svg, png), or a run's job states"),
    "run": ("run", "submit a run, start the workers it needs, show progress, print the result"),
    "submit": ("submit", "submit a run and print its id (workers started elsewhere run it)"),
    "worker": ("worker", "serve one elf instance: claim its jobs and run them"),
    "runs": ("inspect", "list recent runs"),
    "jobs": ("inspect", "list the jobs of a run"),
    "show": ("inspect", "show a job: arguments, result, history, traceback, source"),
    "failures": ("inspect", "list failures, deduplicated by traceback"),
    "source": ("inspect", "print the source stored for a revision"),
}

EPILOG = """\
targets are `path/to/file.py:name` or `package.module:name`.
the mycelium is `--mycelium URL`, else $ELFC_MYCELIUM, else [tool.elfc] mycelium in
pyproject.toml, else sqlite:///.elfc/mycelium.db (embedded, nothing to set up).

examples:
  elfc check examples/                      validate every pipeline under examples/
  elfc run examples/hello/pipeline.py:hello -a name=elves
  elfc graph examples/animals/pipeline.py:census --format mermaid
"""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s module is imported (the others are listed by name)."""
    parser = argparse.ArgumentParser(
        prog="elfc",
        description="Plain Python into arm's-length microservices.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"elfc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(
            name,
            help=help_text,
            description=help_text[0].upper() + help_text[1:] + ".",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if name == command:
            mod = importlib.import_module(f"elfc.cli.commands.{module}")
            mod.configure(name, p)
            p.set_defaults(_module=mod)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        code: int = args._module.run(args)
    except ElfcError as exc:
        print(f"elfc {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code
