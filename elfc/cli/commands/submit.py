"""``elfc submit TARGET [-a name=value ...]``: write a run and print its id."""

from __future__ import annotations

import argparse
import sys

from elfc.cli.commands.run import add_run_arguments, parse_arguments
from elfc.errors import UsageError

EPILOG = """\
The run waits in the mycelium until workers for its elves pick it up. Its id is the only line
on stdout, so a script can keep it: RUN=$(elfc submit ...).

examples:
  elfc submit examples/animals/pipeline.py:census -a rounds=3
  elfc worker examples/animals/pipeline.py --elf animals      (one per elf, any order)
  elfc jobs $RUN                                              follow it (or `elfc runs`)
"""


def configure(name: str, p: argparse.ArgumentParser) -> None:
    p.epilog = EPILOG
    add_run_arguments(p)


def run(args: argparse.Namespace) -> int:
    from elfc.runtime.client import connect
    from elfc.targets import load_pipeline

    pipeline = load_pipeline(args.target)
    try:
        kwargs = parse_arguments(pipeline, args.arg)
    except UsageError as exc:
        print(f"elfc submit: error: {exc}", file=sys.stderr)
        return 2
    mycelium = connect(args.mycelium)
    run_id, built = mycelium.submit_built(pipeline.compiled(), (), kwargs, reuse=args.reuse)
    elves = sorted({j.elf for j in built.jobs})
    print(run_id)
    print(
        f"elfc submit: {len(built.jobs)} jobs for elves {', '.join(elves) or '(none)'} on "
        f"{mycelium.url}",
        file=sys.stderr,
    )
    return 0
