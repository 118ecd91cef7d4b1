"""``elfc check [PATH ...]``: validate every pipeline, elf and handle statically, before deploy."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

from elfc.checker import CheckResult, check, default_paths, run_mypy
from elfc.compiler.diagnostics import Diagnostic, render_diagnostic, render_json
from elfc.errors import PathNotFound
from elfc.mycelium.urls import configured_url

DESCRIPTION = """\
Validate every pipeline, elf and handle statically, before deploy.

Imports each module under PATH (nothing is submitted and no elf is built), compiles every
@pipeline it defines, checks that every @task's annotations can cross a process, that no two
handles share a name with a different class or configuration, and that every handle is used.
Each problem is printed as `path:line:col: CODE message`, with the source line, a caret under
the exact span, and a `help:` line saying what to do. Codes ELF1xx are errors, ELF2xx warnings.
"""

EPILOG = """\
PATH is a file, a directory (searched recursively for .py files that mention elfc; hidden
directories, venv, build, dist and __pycache__ are skipped) or a dotted module name. Without
PATH: the `paths` list of [tool.elfc] in the nearest pyproject.toml, else the current
directory.

--mypy runs mypy (through mypy.api) on the same paths with the project's own configuration:
the nearest mypy.ini, .mypy.ini, pyproject.toml with [tool.mypy], or setup.cfg with [mypy],
looking up from the current directory (mypy's defaults when there is none). Its errors join the
report with the code `mypy`; its notes are left out.

exit status: 0 clean (warnings allowed unless --strict), 1 errors, 2 usage error.

examples:
  elfc check                                  everything [tool.elfc] paths names (or .)
  elfc check examples/ src/pipelines.py       some directories and files
  elfc check mypkg.pipelines -v               a module; print how many jobs each pipeline makes
  elfc check --strict --mypy                  in CI: warnings fail too, and mypy must pass
  elfc check --format json | jq '.[].code'    machine-readable, one object per diagnostic
"""


def configure(name: str, p: argparse.ArgumentParser) -> None:
    p.description = DESCRIPTION
    p.epilog = EPILOG
    p.add_argument("paths", nargs="*", metavar="PATH", help="files, directories or modules")
    p.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text (default): diagnostics with source excerpts; json: a list of objects with "
        "path, line, column, end_line, end_column, code, severity, message, help",
    )
    p.add_argument(
        "-q", "--quiet", action="store_true", help="print only errors (and no summary line)"
    )
    p.add_argument("--strict", action="store_true", help="warnings fail the check too (exit 1)")
    p.add_argument(
        "--mycelium",
        metavar="URL",
        help="compare the handles with the elves registered there (ELF204); default: "
        "$ELFC_MYCELIUM or [tool.elfc] mycelium when set, else no comparison",
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also build each pipeline whose parameters all have defaults (running its static "
        "code, submitting nothing) and print how many jobs it makes",
    )
    p.add_argument(
        "--mypy", action="store_true", help="also run mypy on the same paths and merge its errors"
    )
    p.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour the text output (auto: when stdout is a terminal and NO_COLOR is unset)",
    )


def run(args: argparse.Namespace) -> int:
    cwd = Path.cwd()
    # Checked modules may print when imported or built: keep stdout for the report.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            result = check(
                args.paths, build=args.verbose, cwd=cwd,
                mycelium=args.mycelium or configured_url(cwd),
            )  # fmt: skip
        except PathNotFound as exc:
            print(f"elfc check: error: {exc}", file=sys.stderr)
            return 2
        diagnostics = list(result.diagnostics)
        if args.mypy:
            diagnostics += run_mypy(args.paths or [str(p) for p in default_paths(cwd)], cwd)
    diagnostics = sorted(d.with_path(display_path(d.path, cwd)) for d in diagnostics)
    failing = [d for d in diagnostics if d.severity == "error" or args.strict]
    shown = failing if args.quiet else diagnostics
    if args.format == "json":
        print(render_json(shown))
    else:
        print(render_text(shown, result, args, cwd), end="")
    return 1 if failing else 0


def render_text(
    diagnostics: list[Diagnostic], result: CheckResult, args: argparse.Namespace, cwd: Path
) -> str:
    color = args.color == "always" or (
        args.color == "auto" and sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    )
    blocks = [render_diagnostic(d, color=color) for d in diagnostics]
    out = "\n\n".join(blocks) + ("\n" if blocks else "")
    if args.verbose and not args.quiet:
        if blocks:
            out += "\n"
        for p in result.pipelines:
            where = f"{display_path(p.path, cwd)}:{p.line}:"
            if p.jobs is not None:
                more = ""
                if p.regions and p.formula and p.formula != "0":
                    more = f" + {p.formula} as its branches, loops and calls on task results run"
                elif p.regions and not p.formula:
                    more = ", and more as its branches, loops and calls on task results run"
                out += f"{where} {p.call} makes {_count(p.jobs, 'job')}{more}\n"
            else:
                out += f"{where} {p.call}: job count unknown ({p.why or 'it does not compile'})\n"
    if not args.quiet:
        if out:
            out += "\n"
        out += summary(diagnostics, result) + "\n"
    return out


def summary(diagnostics: list[Diagnostic], result: CheckResult) -> str:
    """``2 errors, 1 warning in 3 pipelines (5 files)``, or ``no problems in ...``."""
    errors = sum(d.severity == "error" for d in diagnostics)
    warnings = len(diagnostics) - errors
    scope = f"{_count(len(result.pipelines), 'pipeline')} ({_count(len(result.files), 'file')})"
    if not diagnostics:
        return f"no problems in {scope}"
    return f"{_count(errors, 'error')}, {_count(warnings, 'warning')} in {scope}"


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def display_path(path: str, cwd: Path) -> str:
    """``path`` relative to ``cwd`` when it is under it, else as it is."""
    try:
        return str(Path(path).relative_to(cwd))
    except ValueError:
        pass
    try:
        return str(Path(os.path.realpath(path)).relative_to(os.path.realpath(cwd)))
    except ValueError:
        return path
