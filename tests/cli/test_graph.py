"""``elfc graph``: pictures of templates and runs, as dot, mermaid, svg and png.

The dot output is read back with a small parser of the subset ``elfc.render`` writes (quoted
ids, ``key="value"`` attributes, nested ``subgraph "cluster_…" { … }``), so assertions are about
the graph — which node sits in which cluster, which edge carries which label — and not about
the text layout. When Graphviz is installed it also has to accept every dot text and draw the
labels exactly as the source spells them.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import pytest

from elfc.cli.main import main
from elfc.model.ir import (
    CallNode,
    DeriveNode,
    Edge,
    InlineNode,
    InputNode,
    OutputNode,
    Region,
    Span,
    Template,
)
from elfc.render import count_states, template_node, to_dot, to_mermaid, worst_status

ROOT = Path(__file__).resolve().parents[2]
ANIMALS = ROOT / "examples" / "animals" / "pipeline.py"
CENSUS = f"{ANIMALS}:census"
HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz `dot` is not installed")

RED, GREEN, BLUE, YELLOW, GREY, DARK_GREY = (
    "#f4a6a6",
    "#a8dba8",
    "#9fc5f8",
    "#fbe38e",
    "#d9d9d9",
    "#8a8a8a",
)


# -- helpers -----------------------------------------------------------------------------


def elfc(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["graph", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@dataclass
class Dot:
    """What a dot text says: node attributes, clusters (label, parent, members), edges."""

    graph: dict[str, str] = field(default_factory=dict)
    nodes: dict[str, dict[str, str]] = field(default_factory=dict)
    clusters: dict[str, dict[str, str]] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)
    edges: list[tuple[str, str, str]] = field(default_factory=list)


_Q = r'"((?:[^"\\]|\\.)*)"'
_ATTR = re.compile(r"(\w+)=" + _Q)


def _unquote(text: str) -> str:
    """A dot string's text as Graphviz draws it: backslash escapes, then HTML entities."""
    text = re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), text)
    return html.unescape(text)


def _attrs(text: str) -> dict[str, str]:
    return {k: _unquote(v) for k, v in _ATTR.findall(text)}


def parse_dot(text: str) -> Dot:
    dot = Dot()
    stack: list[str] = []
    lines = text.splitlines()
    assert lines[0] == "digraph elfc {" and lines[-1] == "}", text
    for line in lines[1:-1]:
        line = line.strip()
        if m := re.fullmatch(r"subgraph " + _Q + r" \{", line):
            cid = _unquote(m.group(1))
            dot.clusters[cid] = {"parent": stack[-1] if stack else ""}
            dot.members[cid] = []
            stack.append(cid)
        elif line == "}":
            stack.pop()
        elif m := re.fullmatch(r"graph \[(.*)\];", line):
            (dot.clusters[stack[-1]] if stack else dot.graph).update(_attrs(m.group(1)))
        elif m := re.fullmatch(r"(node|edge) \[(.*)\];", line):
            pass
        elif m := re.fullmatch(_Q + " -> " + _Q + r" \[(.*)\];", line):
            label = _attrs(m.group(3))["label"].strip()
            dot.edges.append((_unquote(m.group(1)), _unquote(m.group(2)), label))
        elif m := re.fullmatch(_Q + r" \[(.*)\];", line):
            nid = _unquote(m.group(1))
            dot.nodes[nid] = _attrs(m.group(2))
            for cid in stack:
                dot.members[cid].append(nid)
        else:
            raise AssertionError(f"unexpected dot line: {line!r}")
    assert not stack, "unclosed subgraph"
    return dot


MERMAID_LINE = re.compile(
    r"""
      (?P<node>\w+(\[/"[^"\n]*"/\]|\["[^"\n]*"\]|\(\["[^"\n]*"\]\)|\[\["[^"\n]*"\]\]|>"[^"\n]*"\]))
    | (?P<subgraph>subgraph\ \w+\["[^"\n]*"\])
    | (?P<end>end)
    | (?P<edge>\w+\ -->\|"[^"\n]*"\|\ \w+)
    | (?P<classdef>classDef\ \w+\ [\w:#,\ -]+)
    | (?P<cls>class\ [\w,]+\ \w+)
    | (?P<style>style\ \w+\ [\w:#,\ -]+)
    """,
    re.VERBOSE,
)


def check_mermaid(text: str) -> list[str]:
    """Every line is a statement of the subset elfc writes, subgraphs balance; the body."""
    lines = text.splitlines()
    assert lines[0] == "---" and lines[1].startswith('title: "') and lines[2] == "---", text
    assert lines[3] == "flowchart LR"
    depth = 0
    for line in lines[4:]:
        m = MERMAID_LINE.fullmatch(line.strip())
        assert m, f"not a mermaid statement elfc writes: {line!r}"
        depth += 1 if m.group("subgraph") else -1 if m.group("end") else 0
        assert depth >= 0
    assert depth == 0
    return lines[4:]


def census_template() -> Template:
    from elfc.targets import load_pipeline

    template: Template = load_pipeline(CENSUS).graph()
    return template


def source_line(snippet: str) -> int:
    """The 1-based line of ``snippet`` in examples/animals/pipeline.py (found independently)."""
    lines = ANIMALS.read_text().splitlines()
    (line,) = [i for i, text in enumerate(lines, 1) if snippet in text]
    return line


CENSUS_CALLS = {
    # node label prefix: the source text of the call
    "animals.measure": "animals.measure()",
    "store.save": "store.save(m)",
    "formatter.report": "formatter.report(",
}


def span(line: int = 1) -> Span:
    return Span("/tmp/tricky.py", line, 1, line, 10)


NASTY = 'say "hi" \\n <b>&amp; #1 `x` {y}|[z] end'


def tricky_template() -> Template:
    """A hand-made template with every character the two formats treat specially."""
    return Template(
        pipeline="tests.tricky:odd",
        revision="r",
        source_revision="s",
        path="/tmp/tricky.py",
        line=3,
        nodes=(
            InputNode("in:end", "end", 'dict[str, "X"]', repr(NASTY), span(3)),
            CallNode("n1", ("a", "b"), "go", ("r1", "r1"), (), {}, span(5), "L1", 'h.go("x")'),
            DeriveNode("n2", {"slot": 0}, span(6), "L2", 'f"{x}\\" <\n  &>" + x["k"]'),
            InlineNode("n3", "tests.tricky:inner", "r3", span(7), None, "inner(x)"),
            OutputNode("out", span(8), "return y"),
        ),
        edges=(
            Edge("n2", "n3", 'y"<#>'),
            Edge("in:end", "n1", "end"),
            Edge("n1", "n2", "x"),
            Edge("n1", "n2", "x2"),
            Edge("n3", "out", "value"),
        ),
        regions=(
            Region("L1", span(4), 'for k in ["a", "b"]', None),
            Region("L2", span(5), "for j in range(n) # <inner>", "L1"),
        ),
    )


# -- dot ---------------------------------------------------------------------------------


def test_dot_of_census_has_every_call_the_loop_cluster_and_labelled_edges(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = elfc(capsys, CENSUS)
    assert (code, err) == (0, "")
    dot = parse_dot(out)
    labels = {nid: attrs["label"] for nid, attrs in dot.nodes.items()}
    # One node per task call, labelled handle.task · line, the line found in the source file.
    for prefix, snippet in CENSUS_CALLS.items():
        assert f"{prefix} · L{source_line(snippet)}" in labels.values()
    for stat in ("mean", "minimum", "maximum"):
        for values in ("weights", "heights"):
            line = source_line(f"{stat}.compute({values})")
            assert f"{stat}.compute · L{line}" in labels.values()
    calls = [n for n, a in dot.nodes.items() if a["shape"] == "box"]
    assert len(calls) == 9  # measure, save, 6 stats, report
    assert labels["in:rounds"] == "rounds: int = 10"
    assert labels["out"].startswith("return · L")
    assert {labels[n] for n, a in dot.nodes.items() if a["shape"] == "ellipse"} == {
        'm["weight"]',
        'm["height"]',
        "max(saved)",
    }
    # The static loop is a cluster with its header, holding the loop body only.
    (cluster,) = dot.clusters
    assert dot.clusters[cluster]["label"] == "for _ in range(rounds)"
    inside = {labels[n].split(" · ")[0] for n in dot.members[cluster]}
    assert inside == {"animals.measure", "store.save", 'm["weight"]', 'm["height"]'}
    # Edges carry the variable names.
    by_label = {
        (labels[s].split(" · ")[0], labels[t].split(" · ")[0], lab) for s, t, lab in dot.edges
    }
    assert ("animals.measure", "store.save", "m") in by_label
    assert ("store.save", "max(saved)", "saved") in by_label
    assert ('m["weight"]', "mean.compute", "weights") in by_label
    assert ("rounds: int = 10", "formatter.report", "rounds") in by_label
    assert any(t == "out" for _, t, _ in dot.edges)


def test_dot_is_deterministic_whatever_the_edge_order() -> None:
    template = census_template()
    shuffled = msgspec.structs.replace(template, edges=tuple(reversed(template.edges)))
    assert to_dot(template) == to_dot(shuffled)
    assert to_mermaid(template) == to_mermaid(shuffled)


def test_dot_nests_loops_marks_inlined_pipelines_and_escapes() -> None:
    text = to_dot(tricky_template())
    dot = parse_dot(text)
    # Parsing back gives the exact texts, whatever quotes, backslashes and brackets they hold.
    assert (
        dot.nodes["in:end"]["label"]
        == 'end: dict[str, "X"] = \'say "hi" \\\\n <b>&amp; #1 `x` {y}|[…'
    )
    assert dot.nodes["n1"]["label"] == "(a | b).go · L5"
    assert dot.nodes["n2"]["label"] == 'f"{x}\\" < &>" + x["k"]'  # newline folded into a space
    assert "&amp;" in text and "&>" not in text  # dot would read &amp; as an entity
    assert dot.nodes["n3"]["shape"] == "box3d"
    assert dot.nodes["n3"]["label"] == "inner(x) · L7\npipeline tests.tricky:inner"
    assert dot.clusters["cluster_L1"]["label"] == 'for k in ["a", "b"]'
    assert dot.clusters["cluster_L2"]["parent"] == "cluster_L1"
    assert dot.clusters["cluster_L2"]["label"] == "for j in range(n) # <inner>"
    assert dot.members["cluster_L1"] == ["n1", "n2"] and dot.members["cluster_L2"] == ["n2"]
    assert ("n1", "n2", "x, x2") in dot.edges  # two variables between the same nodes: one edge
    assert ("n2", "n3", 'y"<#>') in dot.edges


@needs_dot
def test_graphviz_accepts_the_dot_and_draws_the_labels_as_written(tmp_path: Path) -> None:
    from elfc.render import render_image

    svg = render_image(to_dot(tricky_template()), "svg").decode()
    texts = [html.unescape(t).strip() for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]
    assert 'f"{x}\\" < &>" + x["k"]' in texts
    assert 'for k in ["a", "b"]' in texts
    assert 'y"<#>' in texts
    assert any(t.startswith('end: dict[str, "X"] = \'say "hi" \\\\n <b>&amp;') for t in texts)


# -- mermaid -----------------------------------------------------------------------------


def test_mermaid_of_census(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = elfc(capsys, CENSUS, "--format", "mermaid")
    assert (code, err) == (0, "")
    body = check_mermaid(out)
    text = "\n".join(body)
    for prefix, snippet in CENSUS_CALLS.items():
        assert f'["{prefix} · L{source_line(snippet)}"]' in text
    assert sum(1 for line in body if re.fullmatch(r'\s*n\d+\["[^"]*"\]', line)) == 9
    # The loop is a subgraph labelled with its header, closing after the loop body.
    start = body.index('  subgraph cluster_L1["for _ in range(rounds)"]')
    stop = body.index("  end", start)
    inside = "\n".join(body[start:stop])
    assert "animals.measure" in inside and "store.save" in inside
    assert "formatter.report" not in inside
    assert 'in_rounds[/"rounds: int = 10"/]' in text
    assert re.search(r'n1 -->\|"m"\| n2', text)
    assert re.search(r'in_rounds -->\|"rounds"\| n12', text)


def test_mermaid_escapes_quotes_brackets_and_newlines() -> None:
    body = check_mermaid(to_mermaid(tricky_template()))
    text = "\n".join(body)
    assert 'n2(["f#quot;{x}\\#quot; #lt; #amp;#gt;#quot; + x[#quot;k#quot;]"])' in text
    assert 'subgraph cluster_L1["for k in [#quot;a#quot;, #quot;b#quot;]"]' in text
    assert 'subgraph cluster_L2["for j in range(n) #35; #lt;inner#gt;"]' in text
    assert 'n2 -->|"y#quot;#lt;#35;#gt;"| n3' in text
    assert 'n3[["inner(x) · L7<br>pipeline tests.tricky:inner"]]' in text
    assert "in_end_[/" not in text and "in_end[/" in text  # ids are made safe and unique
    # Nested subgraphs nest: L2 opens inside L1.
    assert body.index(
        '    subgraph cluster_L2["for j in range(n) #35; #lt;inner#gt;"]'
    ) > body.index('  subgraph cluster_L1["for k in [#quot;a#quot;, #quot;b#quot;]"]')


def test_clusters_come_where_their_first_node_does() -> None:
    """Text order follows the source: a loop whose body is only an inner loop still sits
    between the nodes before and after it.
    """
    template = msgspec.structs.replace(
        tricky_template(),
        nodes=(
            CallNode("n1", ("a",), "go", ("r",), (), {}, span(2), None, "a.go()"),
            CallNode("n2", ("a",), "go", ("r",), (), {}, span(4), "L2", "a.go()"),
            CallNode("n3", ("a",), "go", ("r",), (), {}, span(6), None, "a.go()"),
        ),
        edges=(),
    )
    order = [
        line.split()[0].strip('"')
        for line in to_dot(template).splitlines()
        if line.lstrip().startswith(('"n', "subgraph"))
    ]
    assert order == ["n1", "subgraph", "subgraph", "n2", "n3"]
    body = check_mermaid(to_mermaid(template))
    assert [line.strip().split("[")[0] for line in body[:7]] == [
        "n1",
        "subgraph cluster_L1",
        "subgraph cluster_L2",
        "n2",
        "end",
        "end",
        "n3",
    ]


def test_mermaid_ids_avoid_keywords() -> None:
    template = msgspec.structs.replace(
        tricky_template(),
        nodes=(OutputNode("end", span(), "return x"), OutputNode("end_", span(), "return y")),
        edges=(Edge("end", "end_", "x"),),
        regions=(),
    )
    body = check_mermaid(to_mermaid(template))
    assert body[:2] == ['  end_>"return · L1"]', '  end__2>"return · L1"]']
    assert '  end_ -->|"x"| end__2' in body


# -- output files and formats ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "first_line"),
    [
        ("g.dot", "digraph elfc {"),
        ("g.gv", "digraph elfc {"),
        ("g.mmd", "---"),
        ("g.mermaid", "---"),
    ],
)
def test_output_file_format_from_extension(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, first_line: str
) -> None:
    target = tmp_path / name
    code, out, err = elfc(capsys, CENSUS, "-o", str(target))
    assert (code, out, err) == (0, "", "")
    assert target.read_text().splitlines()[0] == first_line


def test_output_file_with_unknown_extension_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = elfc(capsys, CENSUS, "-o", str(tmp_path / "g.txt"))
    assert code == 2 and "--format" in err and ".mmd" in err
    assert not (tmp_path / "g.txt").exists()


def test_explicit_format_wins_over_the_extension(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "g.png"
    code, _, err = elfc(capsys, CENSUS, "-o", str(target), "--format", "mermaid")
    assert code == 0 and "warning" in err and "png" in err
    assert target.read_text().startswith("---\ntitle:")


def test_a_target_is_required_without_run(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = elfc(capsys)
    assert code == 2 and "TARGET" in err


# -- Graphviz ----------------------------------------------------------------------------


@pytest.mark.parametrize("how", [["--format", "svg"], ["--format", "png"], ["-o", "x.png"]])
def test_without_graphviz_svg_and_png_fail_with_install_hints(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    how: list[str],
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.chdir(tmp_path)
    code, out, err = elfc(capsys, CENSUS, *how)
    assert code == 1 and out == ""
    assert "Graphviz is not installed" in err
    assert "apt-get install graphviz" in err and "brew install graphviz" in err
    assert "--format dot" in err and "--format mermaid" in err
    assert not (tmp_path / "x.png").exists()


def test_without_graphviz_as_a_process(tmp_path: Path) -> None:
    """The real command line: `python -m elfc graph` with a PATH that has no `dot`."""
    env = {**os.environ, "PATH": str(tmp_path), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "elfc", "graph", CENSUS, "--format", "png"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    assert "Graphviz is not installed" in done.stderr and "apt-get install graphviz" in done.stderr


def test_mermaid_as_a_process_matches_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    """Same text from another interpreter: nothing depends on hash seeds or import order."""
    done = subprocess.run(
        [sys.executable, "-m", "elfc", "graph", CENSUS, "--format", "mermaid"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "123"},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    _, out, _ = elfc(capsys, CENSUS, "--format", "mermaid")
    assert done.stdout == out


@needs_dot
def test_svg_and_png(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, svg, err = elfc(capsys, CENSUS, "--format", "svg")
    assert (code, err) == (0, "")
    assert "<svg" in svg
    texts = {html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)}
    assert f"animals.measure · L{source_line('animals.measure()')}" in texts
    assert "for _ in range(rounds)" in texts
    code, _, err = elfc(capsys, CENSUS, "-o", str(tmp_path / "census.png"))
    assert (code, err) == (0, "")
    assert (tmp_path / "census.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    code, _, err = elfc(capsys, CENSUS, "-o", str(tmp_path / "census.svg"))
    assert (tmp_path / "census.svg").read_text().lstrip().startswith("<?xml")


# -- runs ---------------------------------------------------------------------------------


def test_worst_status_ranks_failures_first() -> None:
    assert worst_status({"succeeded": 3, "failed": 1}) == "failed"
    assert worst_status({"succeeded": 3, "skipped": 1, "cancelled": 1}) == "cancelled"
    assert worst_status({"succeeded": 3, "running": 1, "pending": 2}) == "running"
    assert worst_status({"succeeded": 3, "pending": 2}) == "pending"
    assert worst_status({"succeeded": 3, "failed": 0}) == "succeeded"
    assert worst_status({}) is None


def test_jobs_of_inlined_pipelines_count_on_the_inline_node() -> None:
    assert template_node("n2") == "n2"
    assert template_node("n2#0.1") == "n2"
    assert template_node("n4#0.1/n2#3") == "n4"
    assert template_node("n4/n2#1") == "n4"
    jobs = [("n1", "succeeded"), ("n1", "failed"), ("n4#0/n2", "running"), ("n4#1/n3", "ready")]
    assert count_states(jobs) == {
        "n1": {"failed": 1, "succeeded": 1},
        "n4": {"ready": 1, "running": 1},
    }


def test_run_states_colour_nodes_by_their_worst_job() -> None:
    template = census_template()
    ids: dict[str, str] = {}  # handle.task -> its first call node
    for n in template.nodes:
        if isinstance(n, CallNode):
            ids.setdefault(f"{n.handles[0]}.{n.task}", n.id)
    states = {
        ids["animals.measure"]: {"succeeded": 4},
        ids["store.save"]: {"succeeded": 3, "failed": 1},
        ids["mean.compute"]: {"running": 1},
        ids["minimum.compute"]: {"pending": 1, "ready": 1},
        ids["maximum.compute"]: {"cancelled": 1},
        ids["formatter.report"]: {"skipped": 1},
    }
    dot = parse_dot(to_dot(template, states, title="a run", arguments={"rounds": 4}))
    assert dot.graph["label"] == "a run"
    node = dot.nodes
    assert node[ids["store.save"]]["fillcolor"] == RED
    assert node[ids["store.save"]]["label"].endswith("\n3 succeeded, 1 failed")
    assert node[ids["animals.measure"]]["fillcolor"] == GREEN
    assert node[ids["mean.compute"]]["fillcolor"] == BLUE
    assert node[ids["minimum.compute"]]["fillcolor"] == YELLOW
    assert node[ids["minimum.compute"]]["label"].endswith("\n1 pending, 1 ready")
    assert node[ids["maximum.compute"]]["fillcolor"] == DARK_GREY
    assert node[ids["formatter.report"]]["fillcolor"] == GREY
    # A call with no jobs in the run says so; derives and inputs make no jobs and stay white.
    no_jobs = [n for n, a in node.items() if a["label"].endswith("\nno jobs")]
    assert len(no_jobs) == 3 and all("dashed" in node[n]["style"] for n in no_jobs)
    assert node["in:rounds"]["label"] == "rounds: int = 4"
    assert {a["fillcolor"] for a in node.values() if a["shape"] == "ellipse"} == {"#ffffff"}

    body = check_mermaid(to_mermaid(template, states, title="a run"))
    save = ids["store.save"]
    assert (
        f'    {save}["store.save · L{source_line("store.save(m)")}<br>3 succeeded, 1 failed"]'
        in body
    )
    assert f"  class {save} st_failed" in body
    assert any(line.startswith("  classDef st_failed fill:#f4a6a6") for line in body)


def _submit_census(url: str, rounds: int, with_template: bool = True) -> str:
    """Submit census and push its jobs into several states, as workers would."""
    from elfc.model.records import FailureRecord
    from elfc.mycelium.urls import open_mycelium
    from elfc.targets import load_pipeline

    census = load_pipeline(CENSUS)
    template = census.graph().to_json() if with_template else None
    with open_mycelium(url) as store:
        run_id = store.submit(census.build(rounds=rounds), template)
        measured = store.claim("animals", "w1", 30.0, rounds)
        for job in measured:
            store.complete(job.id, "w1", b'{"species": "cat", "weight": 4, "height": 25}')
        saves = store.claim("store", "w1", 30.0, rounds)
        store.complete(saves[0].id, "w1", b"1")
        boom = FailureRecord("OSError", "disk full", "Traceback (most recent call last): ...", "r")
        store.fail(saves[1].id, "w1", boom)
        store.claim("mean", "w1", 30.0, 1)
    return str(run_id)


def test_run_from_a_real_sqlite_mycelium(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    run_id = _submit_census(url, rounds=3)
    code, out, err = elfc(capsys, CENSUS, "--run", run_id[:8], "--mycelium", url)
    assert (code, err) == (0, "")
    dot = parse_dot(out)
    by_prefix = {a["label"].split(" · ")[0]: a for a in dot.nodes.values()}
    assert by_prefix["animals.measure"]["label"].endswith("\n3 succeeded")
    assert by_prefix["animals.measure"]["fillcolor"] == GREEN
    assert by_prefix["store.save"]["label"].endswith("\n1 running, 1 succeeded, 1 failed")
    assert by_prefix["store.save"]["fillcolor"] == RED
    assert by_prefix["formatter.report"]["label"].endswith("\n1 skipped")
    assert by_prefix["formatter.report"]["fillcolor"] == GREY
    assert dot.nodes["in:rounds"]["label"] == "rounds: int = 3"
    title = dot.graph["label"]
    assert title.startswith(f"census(rounds=3) · run {run_id} · running\n")
    assert "1 failed" in title and "1 skipped" in title

    # Without TARGET the template stored with the run is drawn.
    code, out2, err = elfc(capsys, "--run", run_id, "--mycelium", url)
    assert (code, err, out2) == (0, "", out)

    code, _, err = elfc(capsys, CENSUS, "--run", "nosuchrun", "--mycelium", url)
    assert code == 1 and "no run 'nosuchrun'" in err


PIPELINE_V1 = """\
from elfc import elf, named, pipeline, task

@elf
class Greeter:
    @task
    def greet(self, name: str) -> str:
        return "hello " + name

greeter = named(Greeter, "greeter")

@pipeline
def hello(name: str = "you") -> str:
    return greeter.greet(name)
"""
PIPELINE_V2 = PIPELINE_V1.replace(
    "return greeter.greet(name)", "return greeter.greet(greeter.greet(name))"
)


@pytest.mark.parametrize("stored", [True, False])
def test_run_of_another_revision_is_drawn_with_a_warning(tmp_path: Path, stored: bool) -> None:
    """The source changed since the run was submitted: say so, and still draw."""
    source = tmp_path / "greet_pipeline.py"
    source.write_text(PIPELINE_V1)
    url = f"sqlite:///{tmp_path / 'm.db'}"
    prepare = (
        "import sys\n"
        "from elfc.mycelium.urls import open_mycelium\n"
        "from elfc.targets import load_pipeline\n"
        f"p = load_pipeline({str(source) + ':hello'!r})\n"
        f"with open_mycelium({url!r}) as m:\n"
        f"    print(m.submit(p.build(), p.graph().to_json() if {stored} else None))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", prepare], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip()
    source.write_text(PIPELINE_V2)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "elfc",
            "graph",
            f"{source}:hello",
            "--run",
            run_id,
            "--mycelium",
            url,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "revision" in done.stderr and "warning" in done.stderr
    calls = [a for a in parse_dot(done.stdout).nodes.values() if a["shape"] == "box"]
    if stored:
        assert "Drawing the template stored with the run" in done.stderr
        assert [a["label"] for a in calls] == ["greeter.greet · L13\n1 ready"]
    else:
        assert "nodes may not match" in done.stderr
        assert len(calls) == 2


def test_an_inlined_pipeline_shows_the_jobs_of_its_graph() -> None:
    states = count_states([("n3#0/n1", "succeeded"), ("n3#1/n2", "failed"), ("n1#0", "running")])
    dot = parse_dot(to_dot(tricky_template(), states))
    assert dot.nodes["n3"]["fillcolor"] == RED
    assert dot.nodes["n3"]["label"].endswith("\n1 succeeded, 1 failed")
    assert dot.nodes["n1"]["fillcolor"] == BLUE
