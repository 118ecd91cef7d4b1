"""A run's graph laid out for the browser: the boxes, clusters and arrows of
:func:`elfc.render.drawing` (what ``elfc graph --run`` draws) with positions in pixels.

The layout is computed here, not by Graphviz, so the dashboard needs nothing installed and
draws the same picture on every machine: each box goes in the row of its longest path from
an input (top to bottom, as data flows), boxes of a row in template order, rows centred.
Labels stay data: the browser sets them as text, never as markup.
"""

from __future__ import annotations

from typing import Any

from elfc.render import Box, Drawing, drawing
from elfc.views import RunPicture

__all__ = ["graph_layout"]

CHAR_WIDTH = 7.2
"""Pixels per character of the 12 px monospace font the page draws labels in."""
LINE_HEIGHT = 16
PAD_X, PAD_Y = 10, 6
GAP_X, GAP_Y = 24, 44
MARGIN = 16
CLUSTER_PAD = 10


def graph_layout(picture: RunPicture) -> dict[str, Any]:
    """The run's picture as plain data: ``{"width", "height", "title", "boxes", "clusters",
    "arrows", "warnings"}`` with each box's ``x, y, w, h`` (its top-left corner and size)."""
    d = drawing(picture.template, picture.states, title=picture.title, arguments=picture.arguments)
    return _layout(d, list(picture.warnings))


def _size(box: Box) -> tuple[float, float]:
    width = max((len(line) for line in box.lines), default=1) * CHAR_WIDTH + 2 * PAD_X
    return round(width, 1), len(box.lines) * LINE_HEIGHT + 2 * PAD_Y


def _ranks(d: Drawing) -> dict[str, int]:
    ids = {box.id for box in d.boxes}
    preds: dict[str, list[str]] = {box.id: [] for box in d.boxes}
    for arrow in d.arrows:
        if arrow.source in ids and arrow.target in ids and arrow.source != arrow.target:
            preds[arrow.target].append(arrow.source)
    rank: dict[str, int] = {}

    def visit(node: str, path: frozenset[str]) -> int:
        if node in rank:
            return rank[node]
        parents = [p for p in preds[node] if p not in path]  # a cycle cannot occur; be safe
        value = 1 + max((visit(p, path | {node}) for p in parents), default=-1)
        rank[node] = value
        return value

    for box in d.boxes:
        visit(box.id, frozenset())
    return rank


def _layout(d: Drawing, warnings: list[str]) -> dict[str, Any]:
    rank = _ranks(d)
    rows: dict[int, list[Box]] = {}
    for box in d.boxes:
        rows.setdefault(rank[box.id], []).append(box)
    sizes = {box.id: _size(box) for box in d.boxes}
    row_widths = {
        r: sum(sizes[b.id][0] for b in boxes) + GAP_X * (len(boxes) - 1)
        for r, boxes in rows.items()
    }
    width = max(row_widths.values(), default=0) + 2 * MARGIN
    placed: dict[str, dict[str, Any]] = {}
    y: float = MARGIN + 2 * LINE_HEIGHT  # room for the title
    for r in sorted(rows):
        height = max(sizes[b.id][1] for b in rows[r])
        x = (width - row_widths[r]) / 2
        for box in rows[r]:
            w, h = sizes[box.id]
            placed[box.id] = {
                "id": box.id,
                "kind": box.kind,
                "lines": list(box.lines),
                "scheme": box.scheme,
                "status": box.scheme[3:] if box.scheme.startswith("st_") else None,
                "fill": box.fill,
                "border": box.border,
                "text": box.text_colour or "#1b1b1b",
                "dashed": box.dashed,
                "cluster": box.cluster,
                "x": round(x, 1),
                "y": round(y + (height - h) / 2, 1),
                "w": w,
                "h": h,
            }
            x += w + GAP_X
        y += height + GAP_Y
    clusters = _clusters(d, placed)
    arrows = []
    for arrow in d.arrows:
        if arrow.source not in placed or arrow.target not in placed:
            continue
        a, b = placed[arrow.source], placed[arrow.target]
        arrows.append(
            {
                "source": arrow.source,
                "target": arrow.target,
                "label": arrow.label,
                "x1": round(a["x"] + a["w"] / 2, 1),
                "y1": round(a["y"] + a["h"], 1),
                "x2": round(b["x"] + b["w"] / 2, 1),
                "y2": round(b["y"], 1),
            }
        )
    return {
        "title": d.title,
        "width": round(width, 1),
        "height": round(y - GAP_Y + MARGIN, 1),
        "boxes": [placed[box.id] for box in d.boxes],
        "clusters": clusters,
        "arrows": arrows,
        "warnings": warnings,
    }


def _clusters(d: Drawing, placed: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each static loop's rectangle around the boxes inside it (nested loops included)."""
    parents = {c.id: c.parent for c in d.clusters}
    members: dict[str, list[dict[str, Any]]] = {c.id: [] for c in d.clusters}
    depth: dict[str, int] = {}
    for c in d.clusters:
        n, owner = 0, c.parent
        while owner is not None:
            n, owner = n + 1, parents.get(owner)
        depth[c.id] = n
    for box in placed.values():
        owner = box["cluster"]
        while owner is not None and owner in members:
            members[owner].append(box)
            owner = parents.get(owner)
    out = []
    for c in d.clusters:
        boxes = members[c.id]
        if not boxes:
            continue
        # An outer loop's rectangle is drawn a little larger than the ones inside it.
        pad = CLUSTER_PAD * (1 + max(depth.values(), default=0) - depth[c.id])
        x1 = min(b["x"] for b in boxes) - pad
        y1 = min(b["y"] for b in boxes) - pad - LINE_HEIGHT
        x2 = max(b["x"] + b["w"] for b in boxes) + pad
        y2 = max(b["y"] + b["h"] for b in boxes) + pad
        out.append(
            {
                "id": c.id,
                "label": c.label,
                "x": round(x1, 1),
                "y": round(y1, 1),
                "w": round(x2 - x1, 1),
                "h": round(y2 - y1, 1),
            }
        )
    out.sort(key=lambda c: -c["w"] * c["h"])
    return out
