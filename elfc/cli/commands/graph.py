"""``elfc graph TARGET``: draw a pipeline's template, or a run of it with job states coloured."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from elfc.errors import ElfcError
from elfc.render import (
    FORMATS,
    IMAGE_FORMATS,
    format_for_path,
    render_image,
    to_dot,
    to_mermaid,
)

if TYPE_CHECKING:
    from elfc.model.ir import Template
    from elfc.views import RunPicture

EPILOG = """\
Nothing runs: the picture comes from compiling the pipeline's source. One node per task call
(`handle.task · line`), derive nodes (their source), inputs, the output, edges labelled with
the variable they carry, and static loops as boxes labelled with their header.

--format dot (the default) and mermaid are text and need nothing installed; svg and png run
Graphviz's `dot` (apt-get install graphviz / brew install graphviz). With -o FILE and no
--format, the extension chooses: .dot .gv .mmd .mermaid .svg .png.

--run ID colours each task call by the worst state of its jobs (failed red, cancelled dark
grey, skipped grey, running blue, ready/pending yellow, succeeded green) and shows their counts.

examples:
  elfc graph examples/animals/pipeline.py:census | dot -Tsvg > census.svg
  elfc graph examples/animals/pipeline.py:census --format mermaid
  elfc graph examples/animals/pipeline.py:census -o census.png
  elfc graph examples/animals/pipeline.py:census --run 3f2a --format svg -o run.svg
"""


def configure(name: str, p: argparse.ArgumentParser) -> None:
    p.epilog = EPILOG
    p.add_argument(
        "target",
        metavar="TARGET",
        nargs="?",
        help="the pipeline: path/to/file.py:name or package.module:name "
        "(optional with --run: the template stored with the run is drawn)",
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="dot (default), mermaid, svg or png (svg and png need Graphviz)",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write to FILE instead of stdout; its extension sets the format if --format is not given",
    )
    p.add_argument("--run", metavar="ID", help="colour the nodes with the job states of this run")
    p.add_argument(
        "--mycelium", metavar="URL", help="mycelium URL, for --run (default: see `elfc -h`)"
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="longest Graphviz may take to draw svg or png (60)",
    )


def run(args: argparse.Namespace) -> int:
    fmt = _choose_format(args.format, args.output)
    if fmt is None:
        return 2
    if args.target is None and args.run is None:
        print(
            "elfc graph: error: give a TARGET (path/to/file.py:name), or --run ID", file=sys.stderr
        )
        return 2
    if fmt == "png" and args.output is None and sys.stdout.isatty():
        print(
            "elfc graph: error: png is binary; write it with -o FILE.png or redirect stdout",
            file=sys.stderr,
        )
        return 2
    draw = to_mermaid if fmt == "mermaid" else to_dot
    if args.run is None:
        text = draw(_local_template(args.target))
    else:
        run = _run_picture(args.target, args.run, args.mycelium)
        text = draw(run.template, run.states, title=run.title, arguments=run.arguments)
    data = render_image(text, fmt, args.timeout) if fmt in IMAGE_FORMATS else text.encode()
    _write(data, args.output)
    return 0


def _choose_format(given: str | None, output: str | None) -> str | None:
    """--format, else the output file's extension, else dot; ``None`` (after saying why) when
    an output file's extension names no format.
    """
    inferred = format_for_path(output) if output else None
    if given is not None:
        if output and inferred is not None and inferred != given:
            print(
                f"elfc graph: warning: writing {given} into {output}, whose extension says "
                f"{inferred}",
                file=sys.stderr,
            )
        return given
    if output is None:
        return "dot"
    if inferred is None:
        print(
            f"elfc graph: error: cannot tell the format from {output!r}: give --format "
            f"({', '.join(FORMATS)}) or an extension .dot .gv .mmd .mermaid .svg .png",
            file=sys.stderr,
        )
        return None
    return inferred


def _local_template(target: str) -> Template:
    from elfc.targets import load_pipeline

    template: Template = load_pipeline(target).graph()
    return template


def _run_picture(target: str | None, run_id: str, url: str | None) -> RunPicture:
    """The run drawn over the template of ``target`` (when given) or the stored one."""
    from elfc.mycelium.urls import default_url, open_mycelium
    from elfc.views import missing_sqlite_file, run_picture

    local = _local_template(target) if target is not None else None
    url = url or default_url()
    missing = missing_sqlite_file(url)
    if missing is not None:
        raise ElfcError(f"no mycelium at {missing}: no run {run_id!r} to draw")
    with open_mycelium(url) as store:
        picture = run_picture(store, run_id, local)
    for warning in picture.warnings:
        _warn(warning)
    return picture


def _warn(message: str) -> None:
    print(f"elfc graph: warning: {message}", file=sys.stderr)


def _write(data: bytes, output: str | None) -> None:
    if output is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        Path(output).write_bytes(data)
    except OSError as exc:
        raise ElfcError(f"cannot write {output}: {exc}") from exc
