"""Pictures of pipelines: a graph template as Graphviz dot or Mermaid text, optionally coloured
with the job states of a run, and dot text rendered to SVG or PNG by Graphviz.

Usage::

    text = to_dot(census.graph())                                  # or to_mermaid(...)
    text = to_dot(template, {"n1": {"succeeded": 3, "failed": 1}})  # a run's job states
    png = render_image(text, "png")                                # needs Graphviz's `dot`

Both text formats come from one :class:`Drawing` (boxes, clusters, arrows), so the two always
show the same picture. Output is deterministic: nodes in template order, clusters in region
order, arrows sorted by the template order of their ends.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Literal

import msgspec

from elfc.errors import ElfcError, GraphvizMissing
from elfc.model.ir import (
    CallNode,
    DeriveNode,
    InlineNode,
    InputNode,
    Node,
    OutputNode,
    Region,
    Template,
)
from elfc.model.status import JOB_STATUS_SEVERITY, JOB_STATUSES

__all__ = [
    "FORMATS",
    "IMAGE_FORMATS",
    "STATUS_COLOURS",
    "Drawing",
    "GraphvizMissing",
    "count_states",
    "default_title",
    "drawing",
    "format_for_path",
    "render_image",
    "template_node",
    "to_dot",
    "to_mermaid",
    "worst_status",
]

FORMATS: tuple[str, ...] = ("dot", "mermaid", "svg", "png")
IMAGE_FORMATS: frozenset[str] = frozenset({"svg", "png"})
_EXTENSIONS: dict[str, str] = {
    ".dot": "dot",
    ".gv": "dot",
    ".mmd": "mermaid",
    ".mermaid": "mermaid",
    ".svg": "svg",
    ".png": "png",
}

StateCounts = Mapping[str, Mapping[str, int]]
"""Job counts of a run per template node id, then per job status."""

Kind = Literal["input", "call", "derive", "inline", "output"]

# -- colours and shapes ------------------------------------------------------------------

STATUS_COLOURS: dict[str, tuple[str, str]] = {
    # status: (fill, border)
    "failed": ("#f4a6a6", "#b3261e"),
    "cancelled": ("#8a8a8a", "#4d4d4d"),
    "handled": ("#f9d9b0", "#c46a00"),
    "skipped": ("#d9d9d9", "#8c8c8c"),
    "not_taken": ("#ffffff", "#b0b0b0"),
    "running": ("#9fc5f8", "#1a5fb4"),
    "ready": ("#fbe38e", "#b08800"),
    "pending": ("#fbe38e", "#b08800"),
    "succeeded": ("#a8dba8", "#2e7d32"),
}
"""Fill and border colour of a node whose worst job status is the key."""

_KIND_COLOURS: dict[Kind, tuple[str, str]] = {
    "input": ("#fff4d6", "#a07a1c"),
    "call": ("#dde8f8", "#3b5f8f"),
    "derive": ("#f3f3f3", "#9a9a9a"),
    "inline": ("#e9ddf5", "#6a4a8c"),
    "output": ("#fff4d6", "#a07a1c"),
}
_RUN_NEUTRAL = ("#ffffff", "#9a9a9a")
"""Nodes that make no jobs (inputs, derives, the output) when drawing a run."""
_NO_JOBS = ("#ffffff", "#6e6e6e")

_DOT_SHAPES: dict[Kind, str] = {
    "input": "parallelogram",
    "call": "box",
    "derive": "ellipse",
    "inline": "box3d",
    "output": "cds",
}

# Left to right reads like the source (calls, then what they feed) and keeps the picture
# wider than tall, which suits a README and a terminal-side browser.
_DOT_GRAPH = {
    "labelloc": "t",
    "fontname": "Helvetica",
    "fontsize": "16",
    "rankdir": "LR",
    "nodesep": "0.3",
    "ranksep": "0.6",
    "newrank": "true",
    "bgcolor": "white",
    "pad": "0.3",
}
_DOT_NODE = {
    "fontname": "Helvetica",
    "fontsize": "12",
    "style": "filled",
    "penwidth": "1.2",
    "margin": "0.15,0.06",
}
_DOT_EDGE = {
    "fontname": "Helvetica",
    "fontsize": "10",
    "color": "#5a5a5a",
    "fontcolor": "#444444",
    "arrowsize": "0.7",
}
_DOT_CLUSTER = {
    "labeljust": "l",
    "style": "rounded,dashed,filled",
    "color": "#7a7a7a",
    "fillcolor": "#f8f9fb",
    "fontname": "Courier",
    "fontsize": "12",
    "margin": "12",
}

_MERMAID_SHAPES: dict[Kind, tuple[str, str]] = {
    "input": ("[/", "/]"),
    "call": ("[", "]"),
    "derive": ("([", "])"),
    "inline": ("[[", "]]"),
    "output": (">", "]"),
}

_MAX_SOURCE = 36
"""Longest derive source or inline call shown before it is shortened with an ellipsis."""


# -- the drawing ------------------------------------------------------------------------


@dataclass(frozen=True)
class Box:
    """One node of the picture."""

    id: str
    kind: Kind
    lines: tuple[str, ...]
    cluster: str | None
    scheme: str
    """Its colour scheme: ``k_<kind>`` for a template, ``st_<status>`` (the worst job status),
    ``nojobs`` or ``neutral`` (a node that makes no jobs) for a run."""
    fill: str
    border: str

    @property
    def dashed(self) -> bool:
        return self.scheme == "nojobs"

    @property
    def text_colour(self) -> str | None:
        return "#ffffff" if self.scheme == "st_cancelled" else None


@dataclass(frozen=True)
class Cluster:
    """A static loop: a box around the nodes of its body, labelled with the loop header."""

    id: str
    label: str
    parent: str | None


@dataclass(frozen=True)
class Arrow:
    source: str
    target: str
    label: str


@dataclass(frozen=True)
class Drawing:
    """What both text formats draw: title, boxes, nested clusters and labelled arrows."""

    title: str
    boxes: tuple[Box, ...]
    clusters: tuple[Cluster, ...]
    arrows: tuple[Arrow, ...]

    def contents(self, cluster: str | None) -> list[Box | Cluster]:
        """The boxes and clusters directly inside ``cluster`` (``None``: the top level), in
        template order; a cluster comes where its first node does.
        """
        parents = {c.id: c.parent for c in self.clusters}
        first: dict[str, int] = {}
        for index, box in enumerate(self.boxes):
            owner = box.cluster
            while owner is not None and owner not in first:
                first[owner] = index
                owner = parents.get(owner)
        items: list[tuple[float, int, Box | Cluster]] = [
            (index, 0, box) for index, box in enumerate(self.boxes) if box.cluster == cluster
        ]
        items += [
            (first.get(c.id, float("inf")), 1, c) for c in self.clusters if c.parent == cluster
        ]
        return [item for _, _, item in sorted(items, key=lambda t: (t[0], t[1]))]


def drawing(
    template: Template,
    states: StateCounts | None = None,
    *,
    title: str | None = None,
    arguments: Mapping[str, object] | None = None,
) -> Drawing:
    """The picture of ``template``.

    With ``states`` (a run's job counts per node id, then per status) each task call and
    inlined pipeline shows its counts and takes the colour of its worst job status; with
    ``arguments`` (a run's arguments by name) each input shows its value instead of its default.
    """
    boxes = tuple(_box(node, states, arguments or {}) for node in template.nodes)
    clusters = tuple(
        Cluster(
            f"cluster_{r.id}",
            _region_label(r, states),
            None if r.parent is None else f"cluster_{r.parent}",
        )
        for r in template.regions
    )
    order = {node.id: i for i, node in enumerate(template.nodes)}
    merged: dict[tuple[str, str], list[str]] = {}
    for edge in template.edges:
        labels = merged.setdefault((edge.source, edge.target), [])
        if edge.label not in labels:
            labels.append(edge.label)
    arrows = tuple(
        Arrow(source, target, ", ".join(sorted(labels)))
        for (source, target), labels in sorted(
            merged.items(),
            key=lambda item: (order.get(item[0][0], -1), order.get(item[0][1], -1), item[0]),
        )
    )
    return Drawing(
        title=title if title is not None else default_title(template),
        boxes=boxes,
        clusters=clusters,
        arrows=arrows,
    )


_REGION_WORDS = {
    "if": "branch on a task result",
    "for": "loop on a task result",
    "while": "loop on a task result",
    "comp": "comprehension on a task result",
    "try": "handlers of the body's task failures",
    "call": "a call on task results",
}


def _region_label(region: Region, states: StateCounts | None) -> str:
    """A region's header; a region on task results says so, and with a run's states how its
    expansions went (``expanded 3``, ``failed 1``)."""
    if region.kind in ("loop", "then", "else", "except"):
        return region.header
    label = f"{region.header}   ({_REGION_WORDS[region.kind]})"
    if states is not None:
        counts = states.get(region.id)
        label += " · " + (_counts_text(counts) if counts else "not reached")
    return label


def default_title(template: Template) -> str:
    """``census  (pipeline.py:168)``: the pipeline's name and where it is defined."""
    name = template.pipeline.rpartition(":")[2]
    return f"{name}  ({PurePath(template.path).name}:{template.line})"


def _box(node: Node, states: StateCounts | None, arguments: Mapping[str, object]) -> Box:
    kind, lines = _describe(node, arguments)
    region = node.region if isinstance(node, CallNode | DeriveNode | InlineNode) else None
    cluster = None if region is None else f"cluster_{region}"
    if states is None:
        return Box(node.id, kind, lines, cluster, f"k_{kind}", *_KIND_COLOURS[kind])
    if kind not in ("call", "inline"):
        return Box(node.id, kind, lines, cluster, "neutral", *_RUN_NEUTRAL)
    counts = {s: n for s, n in states.get(node.id, {}).items() if n > 0}
    status = worst_status(counts)
    if status is None:
        return Box(node.id, kind, (*lines, "no jobs"), cluster, "nojobs", *_NO_JOBS)
    colours = STATUS_COLOURS.get(status, _NO_JOBS)
    return Box(node.id, kind, (*lines, _counts_text(counts)), cluster, f"st_{status}", *colours)


def _describe(node: Node, arguments: Mapping[str, object]) -> tuple[Kind, tuple[str, ...]]:
    """The kind of a template node and the lines of its label."""
    if isinstance(node, InputNode):
        text = node.name
        if node.annotation:
            text += f": {node.annotation}"
        if node.name in arguments:
            text += f" = {_shorten(_json_text(arguments[node.name]))}"
        elif node.default is not None:
            text += f" = {_shorten(node.default)}"
        return "input", (text,)
    if isinstance(node, CallNode):
        receiver = node.handles[0] if len(node.handles) == 1 else f"({' | '.join(node.handles)})"
        return "call", (f"{receiver}.{node.task} · L{node.span.line}",)
    if isinstance(node, DeriveNode):
        if isinstance(node.expr, dict) and "out" in node.expr:  # a call run when values exist
            return "derive", (f"{_shorten(node.source)} · L{node.span.line}",)
        return "derive", (_shorten(node.source),)
    if isinstance(node, InlineNode):
        return "inline", (
            f"{_shorten(node.source)} · L{node.span.line}",
            f"pipeline {node.pipeline}",
        )
    if isinstance(node, OutputNode):
        return "output", (f"return · L{node.span.line}",)
    raise TypeError(f"unknown template node {node!r}")


def _json_text(value: object) -> str:
    try:
        return msgspec.json.encode(value).decode()
    except (TypeError, msgspec.EncodeError):
        return repr(value)


def _shorten(text: str, limit: int = _MAX_SOURCE) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _counts_text(counts: Mapping[str, int]) -> str:
    known = [s for s in JOB_STATUSES if counts.get(s)]
    unknown = sorted(s for s in counts if s not in JOB_STATUSES)
    return ", ".join(f"{counts[s]} {s}" for s in [*known, *unknown])


def worst_status(counts: Mapping[str, int]) -> str | None:
    """The status that colours a node: the worst one any of its jobs has (``None``: no jobs).

    Worst first: failed, cancelled, skipped, running, ready, pending, succeeded; a status
    elfc does not know ranks last.
    """
    present = [s for s, n in counts.items() if n > 0]
    if not present:
        return None
    return min(
        present,
        key=lambda s: (
            JOB_STATUS_SEVERITY.index(s) if s in JOB_STATUS_SEVERITY else len(JOB_STATUS_SEVERITY),
            s,
        ),
    )


def template_node(job_node: str) -> str:
    """The top-level template node a job belongs to.

    A job of an inlined pipeline carries the inlining node, its iteration and the inner node
    (``n4#0.1/n2``); it is drawn on the inline node (``n4``). A job a region's expansion made
    carries the region's key first (``r2#1/n5``, ``r2/r3#0/n7``): it is drawn on its own node.
    """
    parts = [part.split("#", 1)[0] for part in job_node.split("/")]
    for part in parts:
        if not _REGION_ID.fullmatch(part):
            return part
    return parts[-1]


_REGION_ID = re.compile(r"r\d+")


def count_states(jobs: Iterable[tuple[str, str]]) -> dict[str, dict[str, int]]:
    """Job counts per top-level template node, then per status, from ``(job.node, status)``."""
    counts: dict[str, Counter[str]] = {}
    for node, status in jobs:
        counts.setdefault(template_node(node), Counter())[status] += 1
    return {node: dict(sorted(c.items())) for node, c in sorted(counts.items())}


# -- Graphviz dot ------------------------------------------------------------------------


def to_dot(
    template: Template,
    states: StateCounts | None = None,
    *,
    title: str | None = None,
    arguments: Mapping[str, object] | None = None,
) -> str:
    """The template as a Graphviz ``digraph`` (see :func:`drawing` for the options)."""
    picture = drawing(template, states, title=title, arguments=arguments)
    lines = [
        "digraph elfc {",
        f"  graph [{_dot_attrs(label=picture.title, **_DOT_GRAPH)}];",
        f"  node [{_dot_attrs(**_DOT_NODE)}];",
        f"  edge [{_dot_attrs(**_DOT_EDGE)}];",
    ]
    lines += _dot_level(picture, None, "  ")
    for arrow in picture.arrows:
        lines.append(
            f"  {_dot_quote(arrow.source)} -> {_dot_quote(arrow.target)} "
            f"[{_dot_attrs(label=' ' + arrow.label + ' ')}];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_level(picture: Drawing, cluster: str | None, indent: str) -> list[str]:
    lines = []
    for c in picture.contents(cluster):
        if isinstance(c, Box):
            lines.append(f"{indent}{_dot_quote(c.id)} [{_dot_box_attrs(c)}];")
            continue
        lines.append(f"{indent}subgraph {_dot_quote(c.id)} {{")
        lines.append(f"{indent}  graph [{_dot_attrs(label=c.label, **_DOT_CLUSTER)}];")
        lines += _dot_level(picture, c.id, indent + "  ")
        lines.append(f"{indent}}}")
    return lines


def _dot_box_attrs(box: Box) -> str:
    style = "filled,rounded" if box.kind == "call" else "filled"
    if box.dashed:
        style += ",dashed"
    attrs = {
        "label": "\n".join(box.lines),
        "shape": _DOT_SHAPES[box.kind],
        "style": style,
        "fillcolor": box.fill,
        "color": box.border,
    }
    if box.kind == "derive":
        attrs |= {"fontname": "Courier", "fontsize": "11", "height": "0.35"}
    if box.text_colour is not None:
        attrs["fontcolor"] = box.text_colour
    return _dot_attrs(**attrs)


def _dot_attrs(**attrs: str) -> str:
    return ", ".join(f"{key}={_dot_quote(value)}" for key, value in attrs.items())


def _dot_quote(text: str) -> str:
    r"""A dot double-quoted string. A newline becomes dot's centred line break ``\n``; every
    other backslash is literal (dot would read ``\N``, ``\G``, ``\l`` ... as escapes), and so
    is every ``&`` (dot would read ``&amp;`` as an HTML entity).
    """
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "")
    escaped = escaped.replace("&", "&amp;")
    return '"' + escaped.replace("\n", "\\n") + '"'


# -- Mermaid ----------------------------------------------------------------------------

_MERMAID_RESERVED = frozenset(
    {
        "end",
        "graph",
        "subgraph",
        "flowchart",
        "style",
        "classdef",
        "class",
        "click",
        "linkstyle",
        "default",
        "direction",
        "call",
        "href",
        "callback",
        "interpolate",
    }
)


def to_mermaid(
    template: Template,
    states: StateCounts | None = None,
    *,
    title: str | None = None,
    arguments: Mapping[str, object] | None = None,
) -> str:
    """The template as a Mermaid ``flowchart`` (see :func:`drawing` for the options)."""
    picture = drawing(template, states, title=title, arguments=arguments)
    ids = _mermaid_ids([b.id for b in picture.boxes] + [c.id for c in picture.clusters])
    lines = [
        "---",
        f"title: {_mermaid_title(picture.title)}",
        "---",
        "flowchart LR",
    ]
    lines += _mermaid_level(picture, None, ids, "  ")
    for arrow in picture.arrows:
        lines.append(
            f"  {ids[arrow.source]} -->|{_mermaid_quote(arrow.label)}| {ids[arrow.target]}"
            if arrow.source in ids and arrow.target in ids
            else f"  %% edge {arrow.source} -> {arrow.target} has an unknown end"
        )
    lines += _mermaid_styles(picture, ids)
    return "\n".join(lines) + "\n"


def _mermaid_level(
    picture: Drawing, cluster: str | None, ids: Mapping[str, str], indent: str
) -> list[str]:
    lines = []
    for c in picture.contents(cluster):
        if isinstance(c, Box):
            opening, closing = _MERMAID_SHAPES[c.kind]
            label = "<br>".join(_mermaid_escape(line) for line in c.lines)
            lines.append(f'{indent}{ids[c.id]}{opening}"{label}"{closing}')
            continue
        lines.append(f"{indent}subgraph {ids[c.id]}[{_mermaid_quote(c.label)}]")
        lines += _mermaid_level(picture, c.id, ids, indent + "  ")
        lines.append(f"{indent}end")
    return lines


def _mermaid_styles(picture: Drawing, ids: Mapping[str, str]) -> list[str]:
    """``classDef`` per colour scheme, then ``class`` lines assigning the boxes to them."""
    groups: dict[str, list[str]] = {}
    defs: dict[str, str] = {}
    for b in picture.boxes:
        style = f"fill:{b.fill},stroke:{b.border}"
        if b.dashed:
            style += ",stroke-dasharray:4 3"
        if b.text_colour is not None:
            style += f",color:{b.text_colour}"
        name = _mermaid_class(b.scheme)
        defs.setdefault(name, style)
        groups.setdefault(name, []).append(ids[b.id])
    lines = [f"  classDef {name} {style}" for name, style in defs.items()]
    lines += [f"  class {','.join(members)} {name}" for name, members in groups.items()]
    lines += [
        f"  style {ids[c.id]} fill:{_DOT_CLUSTER['fillcolor']},stroke:{_DOT_CLUSTER['color']},"
        f"stroke-dasharray:5 4"
        for c in picture.clusters
    ]
    return lines


def _mermaid_class(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def _mermaid_ids(names: Iterable[str]) -> dict[str, str]:
    """A Mermaid-safe, unique id per node or cluster id (``in:rounds`` -> ``in_rounds``)."""
    ids: dict[str, str] = {}
    used: set[str] = set()
    for name in names:
        base = re.sub(r"[^A-Za-z0-9_]", "_", name) or "node"
        if base[0].isdigit():
            base = "id_" + base
        if base.lower() in _MERMAID_RESERVED:
            base += "_"
        candidate, n = base, 1
        while candidate in used:
            n += 1
            candidate = f"{base}_{n}"
        ids[name] = candidate
        used.add(candidate)
    return ids


def _mermaid_escape(text: str) -> str:
    """Text for inside a Mermaid ``"..."`` label: entity codes for the characters that would end
    the string or be read as markup, one line.
    """
    text = " ".join(text.split())
    text = text.replace("#", "#35;").replace("&", "#amp;").replace('"', "#quot;")
    return text.replace("<", "#lt;").replace(">", "#gt;").replace("`", "#96;")


def _mermaid_quote(text: str) -> str:
    return f'"{_mermaid_escape(text)}"'


def _mermaid_title(text: str) -> str:
    """The front-matter title, as a YAML double-quoted scalar."""
    one_line = " · ".join(" ".join(line.split()) for line in text.splitlines() if line.strip())
    return '"' + one_line.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- Graphviz images ---------------------------------------------------------------------


def render_image(dot_source: str, fmt: str, timeout: float = 60.0) -> bytes:
    """Run Graphviz's ``dot -T<fmt>`` on ``dot_source``: the SVG or PNG bytes.

    Raises :class:`GraphvizMissing` when ``dot`` is not on PATH, and :class:`ElfcError` when it
    fails or takes longer than ``timeout`` seconds.
    """
    if fmt not in IMAGE_FORMATS:
        raise ValueError(f"render_image draws svg or png, not {fmt!r}")
    program = shutil.which("dot")
    if program is None:
        raise GraphvizMissing(fmt)
    command = [program, f"-T{fmt}"]
    if fmt == "png":
        command.append("-Gdpi=144")  # crisp on high-density screens, still small
    try:
        done = subprocess.run(
            command, input=dot_source.encode(), capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise ElfcError(f"Graphviz `dot -T{fmt}` took longer than {timeout:g}s") from None
    except OSError as exc:
        raise ElfcError(f"cannot run Graphviz `dot`: {exc}") from exc
    if done.returncode != 0 or not done.stdout:
        detail = done.stderr.decode(errors="replace").strip() or f"exit code {done.returncode}"
        raise ElfcError(f"Graphviz `dot -T{fmt}` failed: {detail}")
    return done.stdout


def format_for_path(path: str) -> str | None:
    """The format a file name asks for by its extension (``.dot``/``.gv``, ``.mmd``/``.mermaid``,
    ``.svg``, ``.png``); ``None`` when the extension is not one of them.
    """
    return _EXTENSIONS.get(PurePath(path).suffix.lower())
