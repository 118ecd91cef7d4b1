"""The ``elfc`` command: check, graph, run, submit, worker, and inspection commands.

Start-up stays fast: only the chosen command's module is imported (``elfc --help`` imports
none). Logging is configured here and nowhere else: the library only emits records.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import json
import logging
import os
import sys
from collections.abc import Collection, Iterator, Sequence

from elfc._version import __version__
from elfc.errors import CompileError, ElfcError

# command name -> module in elfc.cli.commands with `configure(parser)` and `run(args) -> int`
COMMANDS: dict[str, tuple[str, str]] = {
    "check": ("check", "validate every pipeline statically, before deploy"),
    "graph": ("graph", "draw a pipeline's graph (dot, mermaid, svg, png), or a run's job states"),
    "run": ("run", "submit a run, start the workers it needs, show progress, print the result"),
    "submit": ("submit", "submit a run and print its id (workers started elsewhere run it)"),
    "worker": ("worker", "serve one elf instance: claim its jobs and run them"),
    "runs": ("inspect", "list recent runs"),
    "jobs": ("inspect", "list the jobs of a run"),
    "show": ("inspect", "show a job (arguments, result, history, traceback, source) or a run"),
    "failures": ("inspect", "list failures, deduplicated by traceback"),
    "source": ("inspect", "print the source stored for a revision"),
    "result": ("operate", "print a run's value (or its failures), waiting for it if asked"),
    "cancel": ("operate", "cancel a run: its waiting jobs at once, its running ones soon"),
    "logs": ("operate", "print what a run's jobs wrote (stdout, stderr, logging)"),
    "retry": ("operate", "run a run's failed part again with the code as it is now"),
    "prune": ("operate", "delete old settled runs and what only they use"),
    "completion": ("completion", "print a shell completion script (bash, zsh, tcsh)"),
    "ui": ("ui", "serve a web dashboard of the mycelium (needs the ui extra)"),
}

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_LEVEL_ENV = "ELFC_LOG_LEVEL"
LOG_FORMATS = ("text", "json")
LOG_FORMAT_ENV = "ELFC_LOG_FORMAT"

EPILOG = """\
targets are `path/to/file.py:name` or `package.module:name`.
the mycelium is `--mycelium URL`, else $ELFC_MYCELIUM, else [tool.elfc] mycelium in
pyproject.toml, else sqlite:///.elfc/mycelium.db (embedded, nothing to set up).
URLs: sqlite:///path.db, postgresql://user@host:5432/db (or postgres://),
arango://user@host:8529/db (arangos:// for TLS); passwords are shown masked.
`elfc COMMAND --help` explains a command, with examples.

examples:
  elfc check examples/                      validate every pipeline under examples/
  elfc run examples/hello/pipeline.py:hello -a name=elves
  elfc graph examples/animals/pipeline.py:census --format mermaid
  elfc --log-level debug run examples/hello/pipeline.py:hello -a name=elves
                                            also show what the workers do, job by job
  elfc -v --log-format json worker app.py --elf store
                                            INFO records as JSON lines, for a log collector
  eval "$(elfc completion bash)"            tab completion of commands and options
"""


def build_parser(command: str | Collection[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s module is imported (the others are listed by name).
    Given several commands (``elfc completion``: all), each of them is configured."""
    wanted = {command} if isinstance(command, str) else set(command or ())
    parser = argparse.ArgumentParser(
        prog="elfc",
        description="Plain Python into arm's-length microservices.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"elfc {__version__}")
    parser.add_argument(
        "--log-level",
        type=str.lower,
        choices=LOG_LEVELS,
        metavar="LEVEL",
        help="show elfc's log records at LEVEL and above on stderr, for this command and the "
        f"workers it starts: {', '.join(LOG_LEVELS)} (default ${LOG_LEVEL_ENV}, else warning)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="-v is --log-level info, -vv is --log-level debug",
    )
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        help="log records as text lines or as one JSON object per line, here and in the "
        f"workers it starts (default ${LOG_FORMAT_ENV}, else text)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(
            name,
            help=help_text,
            description=help_text[0].upper() + help_text[1:] + ".",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if name in wanted:
            mod = importlib.import_module(f"elfc.cli.commands.{module}")
            mod.configure(name, p)
            p.set_defaults(_module=mod)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = command_name(argv)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    verbose = {1: "info"}.get(args.verbose, "debug") if args.verbose else None
    level = args.log_level or verbose or os.environ.get(LOG_LEVEL_ENV, "warning").lower()
    if level not in LOG_LEVELS:
        parser.error(f"${LOG_LEVEL_ENV} is {level!r}: give one of {', '.join(LOG_LEVELS)}")
    form = args.log_format or os.environ.get(LOG_FORMAT_ENV, "text").lower()
    if form not in LOG_FORMATS:
        parser.error(f"${LOG_FORMAT_ENV} is {form!r}: give one of {', '.join(LOG_FORMATS)}")
    if args.command is None:
        parser.print_help()
        return 2
    try:
        with logging_to_stderr(level, form):
            code: int = args._module.run(args)
    except CompileError as exc:
        report_compile_error(args.command, exc)
        return 1
    except ElfcError as exc:
        print(f"elfc {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


def report_compile_error(command: str, exc: CompileError) -> None:
    """Every diagnostic, with its source line and help, as `elfc check` shows them."""
    if not exc.diagnostics:
        print(f"elfc {command}: error: {exc}", file=sys.stderr)
        return
    from elfc.compiler.diagnostics import render_diagnostic

    n = len(exc.diagnostics)
    print(
        f"elfc {command}: error: the pipeline does not compile ({n} problem(s)):", file=sys.stderr
    )
    for d in exc.diagnostics:
        print("\n" + render_diagnostic(d), file=sys.stderr)


def command_name(argv: Sequence[str]) -> str | None:
    """The first word of ``argv`` that is neither an option nor an option's value."""
    words = iter(argv)
    for word in words:
        if word in ("--log-level", "--log-format"):
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


@contextlib.contextmanager
def logging_to_stderr(level: str, form: str = "text") -> Iterator[None]:
    """Show the ``elfc`` loggers' records at ``level`` and above on stderr while a command
    runs, as text or JSON lines (``form``), then put everything back (tests call
    :func:`main` many times in one process).

    Worker processes the command starts inherit both through ``$ELFC_LOG_LEVEL`` and
    ``$ELFC_LOG_FORMAT``.
    """
    logger = logging.getLogger("elfc")
    handler = _json_handler() if form == "json" else _stderr_handler()
    saved = logger.level, logger.propagate
    saved_env = {name: os.environ.get(name) for name in (LOG_LEVEL_ENV, LOG_FORMAT_ENV)}
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    # Shown once, by this handler, even when a task's module configures the root logger.
    logger.propagate = False
    os.environ[LOG_LEVEL_ENV] = level
    os.environ[LOG_FORMAT_ENV] = form
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class _JSONFormatter(logging.Formatter):
    """One JSON object per record: for log collectors, not for reading."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": datetime.datetime.fromtimestamp(record.created)
            .astimezone()
            .isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def _json_handler() -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JSONFormatter())
    return handler


def _stderr_handler() -> logging.Handler:
    """rich's handler on a terminal (aligned, coloured levels); plain lines for files and CI."""
    fmt = "%(name)s[%(process)d]: %(message)s"
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.logging import RichHandler

        rich_handler = RichHandler(console=Console(stderr=True), show_path=False)
        rich_handler.setFormatter(logging.Formatter(fmt))
        return rich_handler
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s " + fmt))
    return handler
