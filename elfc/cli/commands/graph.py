"""``elfc graph TARGET``: draw a pipeline's template, or a run of it with job states coloured."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from elfc.errors import ElfcError
from elfc.render import (
    FORMATS,
    IMAGE_FORMATS,
    count_states,
    format_for_path,
    render_image,
    to_dot,
    to_mermaid,
)

if TYPE_CHECKING:
    from elfc.model.ir import Template
    from elfc.mycelium.base import Mycelium, RunInfo

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
    if args.run is None:
        template, picture = _local_template(args.target), Picture()
    else:
        template, picture = _run_picture(args.target, args.run, args.mycelium)
    draw = to_mermaid if fmt == "mermaid" else to_dot
    text = draw(template, picture.states, title=picture.title, arguments=picture.arguments)
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


@dataclass(frozen=True)
class Picture:
    """What a run adds to the template's picture (nothing when drawing a template alone)."""

    states: dict[str, dict[str, int]] | None = None
    title: str | None = None
    arguments: dict[str, object] | None = None


def _run_picture(target: str | None, run_id: str, url: str | None) -> tuple[Template, Picture]:
    """The template to draw for a run, and the run's job states, title and arguments."""
    from elfc.cli.commands.inspect import missing_sqlite_file
    from elfc.mycelium.base import default_url, open_mycelium

    local = _local_template(target) if target is not None else None
    url = url or default_url()
    missing = missing_sqlite_file(url)
    if missing is not None:
        raise ElfcError(f"no mycelium at {missing}: no run {run_id!r} to draw")
    with open_mycelium(url) as store:
        info = store.run_info(run_id)
        if info is None:
            raise ElfcError(f"no run {run_id!r} in the mycelium {store.url}")
        template = _template_for_run(store, info, local)
        states = count_states((job.node, job.status) for job in store.list_jobs(info.id))
    strays = sorted(set(states) - {node.id for node in template.nodes})
    if strays:
        _warn(
            f"jobs of run {info.id} belong to nodes the drawn template does not have "
            f"({', '.join(strays)}); they are not shown"
        )
    return template, Picture(states, _run_title(info), dict(info.arguments))


def _template_for_run(store: Mycelium, info: RunInfo, local: Template | None) -> Template:
    """The local template when it is the run's revision; else the one stored with the run
    (saying so); else the local one with a warning.
    """
    from elfc.model.ir import Template

    if local is not None and local.pipeline != info.pipeline:
        _warn(f"run {info.id} is of the pipeline {info.pipeline}, not {local.pipeline}")
    if local is not None and local.revision == info.revision:
        return local
    stored = store.get_template(info.revision)
    if stored is not None:
        if local is not None:
            _warn(
                f"run {info.id} was submitted with pipeline revision {info.revision}; the local "
                f"source is revision {local.revision}. Drawing the template stored with the run."
            )
        return Template.from_json(stored)
    if local is None:
        raise ElfcError(
            f"the mycelium holds no template for run {info.id} (revision {info.revision}): "
            f"give the pipeline TARGET to draw"
        )
    _warn(
        f"run {info.id} was submitted with pipeline revision {info.revision}; the local source "
        f"is revision {local.revision} and the mycelium holds no template for the run's. "
        f"Drawing the local template: nodes may not match the run's jobs."
    )
    return local


def _run_title(info: RunInfo) -> str:
    """``census(rounds=3) · run 4f3723b1 · failed`` over the run's job counts."""
    name = info.pipeline.rpartition(":")[2]
    call = ", ".join(f"{k}={msgspec.json.encode(v).decode()}" for k, v in info.arguments.items())
    if len(call) > 60:
        call = call[:59] + "…"
    counts = ", ".join(f"{n} {status}" for status, n in info.counts.items() if n)
    return f"{name}({call}) · run {info.id} · {info.status}\n{counts or 'no jobs'}"


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
