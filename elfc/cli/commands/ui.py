"""``elfc ui``: serve the web dashboard of a mycelium."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

from elfc.errors import ElfcError

TOKEN_ENV = "ELFC_UI_TOKEN"

EPILOG = f"""\
Serves the dashboard (runs, a run's graph, timeline and jobs, each job's arguments, result,
traceback and sources, failures, elves and workers) from the installed package: no network,
no CDN. Pages update live while runs progress. Needs the ui extra: pip install 'elfc[ui]'.

It binds to 127.0.0.1 and only reads, unless told otherwise: --allow-actions adds a
"Cancel run" button (a POST with a CSRF token). Bound to another address it warns, and
--token (or ${TOKEN_ENV}) makes every visitor open it once with ?token=... .

examples:
  elfc ui                                     http://127.0.0.1:8765/ on the default mycelium
  elfc ui --mycelium sqlite:///runs.db --port 9000
  elfc ui --allow-actions                     runs can be cancelled from the page
  ELFC_UI_TOKEN=s3cret elfc ui --host 0.0.0.0 reachable from other machines, with a token
"""


def configure(name: str, p: argparse.ArgumentParser) -> None:
    p.epilog = EPILOG
    p.add_argument("--mycelium", metavar="URL", help="mycelium URL (default: see `elfc -h`)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port to listen on (8765)")
    p.add_argument(
        "--allow-actions",
        action="store_true",
        help="offer actions that change the mycelium (cancel a run); off by default",
    )
    p.add_argument(
        "--token",
        metavar="TOKEN",
        default=None,
        help=f"require this token from every visitor (default ${TOKEN_ENV}; none)",
    )
    p.add_argument(
        "--poll",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="how often a live page checks for changes (1; at least 1: a browser is never polled faster)",
    )


def run(args: argparse.Namespace) -> int:
    from elfc.mycelium.urls import default_url
    from elfc.views import missing_sqlite_file

    missing_extra = [m for m in ("starlette", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing_extra:
        raise ElfcError(
            f"`elfc ui` needs the ui extra ({', '.join(missing_extra)} not installed): "
            "pip install 'elfc[ui]'"
        )
    url = args.mycelium or default_url()
    missing = missing_sqlite_file(url)
    if missing is not None:
        raise ElfcError(
            f"no mycelium at {missing}: `elfc run` or `elfc submit` creates it, or name "
            f"another with --mycelium URL"
        )
    if args.poll < 1.0:
        raise ElfcError(
            f"--poll {args.poll}: give at least 1 second (one check per second per page at most)"
        )
    if not 0 < args.port < 65536:
        raise ElfcError(f"--port {args.port}: give a port from 1 to 65535")
    if args.token:
        os.environ[TOKEN_ENV] = args.token  # handed on in the environment, not in argv
    # The dashboard is its own layer beside the command line: this process becomes its server
    # (same pid, so Ctrl-C and a supervisor's signals reach it) rather than importing it.
    argv = [sys.executable, "-m", "elfc.ui", "--mycelium", url, "--host", args.host]
    argv += ["--port", str(args.port), "--poll", str(args.poll)]
    if args.allow_actions:
        argv.append("--allow-actions")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)
