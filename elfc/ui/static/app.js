// The elfc dashboard: reads /api/... and builds each page from DOM nodes.
// Every value from the mycelium goes into the page as text (textContent, attribute values,
// SVG <text>), never as HTML, so a task result such as "<script>…" shows as those characters.

const SVG = "http://www.w3.org/2000/svg";
const main = document.getElementById("main");
let config = null;
let source = null; // the EventSource of the page, if it is live
let generation = 0; // bumped on each navigation, so late answers of an old page are dropped

// -- building nodes -------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "on") for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) node.setAttribute(name, String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

function link(href, text, attrs) {
  return el("a", { href, ...(attrs || {}) }, text);
}

function badge(status) {
  const c = (config && config.colours[status]) || { fill: "#fff", border: "#999" };
  const b = el("span", { class: "badge", dataset: { status } }, status);
  b.style.background = c.fill;
  b.style.borderColor = c.border;
  return b;
}

function chips(counts) {
  return el("span", { class: "chips" }, Object.entries(counts).map(([s, n]) => {
    const b = badge(s);
    b.textContent = `${n} ${s}`;
    return b;
  }));
}

function json(value) {
  return JSON.stringify(value, null, 2);
}

function short(value, limit) {
  const text = JSON.stringify(value);
  return text.length > limit ? text.slice(0, limit - 1) + "…" : text;
}

function when(t) {
  if (t === null || t === undefined) return "–";
  const d = new Date(t * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  const off = -d.getTimezoneOffset();
  const zone = `${off >= 0 ? "+" : "-"}${pad(Math.floor(Math.abs(off) / 60))}${pad(Math.abs(off) % 60)}`;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${zone}`;
}

function seconds(s) {
  if (s === null || s === undefined) return "–";
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${(s / 3600).toFixed(1)} h`;
}

function jobHref(id) {
  return "/jobs/" + id.split("/").map(encodeURIComponent).join("/");
}

// -- talking to the server ------------------------------------------------------------------

async function api(path) {
  const answer = await fetch(path, { headers: { Accept: "application/json" } });
  const body = await answer.json();
  if (!answer.ok) throw new Error(body.error || `${answer.status} ${answer.statusText}`);
  return body;
}

async function post(path) {
  const answer = await fetch(path, { method: "POST", headers: { "X-CSRF-Token": config.csrf } });
  const body = await answer.json();
  if (!answer.ok) throw new Error(body.error || `${answer.status} ${answer.statusText}`);
  return body;
}

function live(query, refresh) {
  // One stream per page: the server says "change" at most once per poll interval.
  if (source) source.close();
  source = new EventSource("/api/events" + query);
  const dot = document.getElementById("live");
  source.addEventListener("open", () => dot.classList.add("on"));
  source.addEventListener("error", () => dot.classList.remove("on"));
  let busy = false;
  let again = false;
  source.addEventListener("change", async () => {
    if (busy) { again = true; return; }
    busy = true;
    try {
      do { again = false; await refresh(); } while (again);
    } finally {
      busy = false;
    }
  });
}

function show(...nodes) {
  main.replaceChildren(...nodes);
}

function fail(error) {
  show(el("h1", {}, "Cannot show this page"), el("p", { class: "error" }, error.message));
}

// -- runs -------------------------------------------------------------------------------------

async function runsPage(params) {
  const status = params.get("status") || "";
  const pipeline = params.get("pipeline") || "";
  const q = params.get("q") || "";
  const form = el("form", { class: "filters", method: "get", action: "/" },
    el("label", {}, "status", el("select", { name: "status" },
      el("option", { value: "" }, "any"),
      config.run_statuses.map((s) => el("option", { value: s, selected: s === status }, s)))),
    el("label", {}, "pipeline", el("input", { name: "pipeline", value: pipeline, placeholder: "name contains" })),
    el("label", {}, "run id", el("input", { name: "q", value: q, placeholder: "id prefix", class: "mono" })),
    el("button", { type: "submit" }, "Filter"));
  const table = el("div", { id: "runs" });
  show(el("h1", {}, "Runs"), form, table);
  const query = new URLSearchParams({ status, pipeline, q }).toString();
  const mine = generation;
  async function refresh() {
    const data = await api("/api/runs?" + query);
    if (mine !== generation) return;
    table.replaceChildren(runsTable(data.runs));
  }
  await refresh();
  live("", refresh);
}

function runsTable(runs) {
  if (!runs.length) return el("p", { class: "muted" }, "No runs match. Submit one with `elfc run` or `elfc submit`.");
  return el("table", {},
    el("thead", {}, el("tr", {}, ["run", "pipeline", "status", "arguments", "jobs", "by state", "started", "finished", "duration"]
      .map((h) => el("th", { class: h === "jobs" || h === "duration" ? "num" : null }, h)))),
    el("tbody", {}, runs.map((r) => el("tr", { dataset: { run: r.id } },
      el("td", { class: "id" }, link("/runs/" + encodeURIComponent(r.id), r.id)),
      el("td", { class: "mono" }, r.pipeline),
      el("td", {}, badge(r.status)),
      el("td", { class: "mono", title: JSON.stringify(r.arguments) }, short(r.arguments, 60)),
      el("td", { class: "num" }, `${r.done}/${r.total}` + (r.cached ? ` (${r.cached} cached)` : "")),
      el("td", {}, chips(r.counts)),
      el("td", { class: "when" }, when(r.created)),
      el("td", { class: "when" }, when(r.finished)),
      el("td", { class: "num" }, seconds(r.duration))))));
}

// -- a run -----------------------------------------------------------------------------------

async function runPage(runId, params) {
  const mine = generation;
  const head = el("div", { id: "run-head" });
  const graph = el("div", { class: "graph", id: "graph" });
  const gantt = el("div", { class: "gantt", id: "gantt" });
  const jobs = el("div", { id: "jobs" });
  show(head, el("h2", {}, "Graph"), graph, el("h2", {}, "Timeline"), gantt, el("h2", {}, "Jobs"), jobs);
  const state = { status: params.get("status") || "", offset: Number(params.get("offset") || 0) };
  let lastGantt = 0;

  async function refreshHead() {
    const data = await api("/api/runs/" + encodeURIComponent(runId));
    if (mine !== generation) return null;
    head.replaceChildren(...runHead(data));
    graph.replaceChildren(drawGraph(data.graph));
    return data;
  }
  async function refreshGantt() {
    lastGantt = Date.now();
    const data = await api(`/api/runs/${encodeURIComponent(runId)}/timeline`);
    if (mine !== generation) return;
    gantt.replaceChildren(drawGantt(data));
  }
  async function refreshJobs() {
    const query = new URLSearchParams({ offset: state.offset, limit: 100 });
    if (state.status) query.set("status", state.status);
    const data = await api(`/api/runs/${encodeURIComponent(runId)}/jobs?${query}`);
    if (mine !== generation) return;
    state.offset = data.offset;
    jobs.replaceChildren(...jobTable(data, state, refreshJobs));
  }
  // The first view is the run, its graph and its first page of jobs; the timeline follows.
  const [first] = await Promise.all([refreshHead(), refreshJobs()]);
  const drawn = refreshGantt();
  if (first && first.run.status === "running") {
    live("?run=" + encodeURIComponent(first.run.id), async () => {
      const data = await refreshHead();
      await refreshJobs();
      // The timeline of a big run costs the most to read: at most every 2 s, and once at the end.
      if (Date.now() - lastGantt > 2000 || (data && data.run.status !== "running")) await refreshGantt();
    });
  }
  await drawn;
}

function runHead(data) {
  const r = data.run;
  const out = [
    el("h1", {}, `Run ${r.id} `, badge(r.status)),
    el("dl", { class: "facts" },
      el("dt", {}, "pipeline"), el("dd", { class: "mono" }, r.pipeline),
      el("dt", {}, "revision"), el("dd", { class: "mono" }, data.revision),
      el("dt", {}, "arguments"), el("dd", { class: "mono" }, JSON.stringify(r.arguments)),
      el("dt", {}, "jobs"), el("dd", { id: "run-counts" }, `${r.done}/${r.total} done `, chips(r.counts), r.cached ? ` ${r.cached} cached` : null),
      el("dt", {}, "started"), el("dd", {}, when(r.created)),
      el("dt", {}, "finished"), el("dd", {}, when(r.finished)),
      el("dt", {}, "duration"), el("dd", {}, seconds(r.duration)),
      r.error ? [el("dt", {}, "error"), el("dd", { class: "error" }, r.error)] : null,
      data.has_value ? [el("dt", {}, "value"), el("dd", {}, el("pre", { id: "run-value" }, json(data.value)))] : null),
  ];
  if (data.elves.length) {
    out.push(el("table", { id: "elves" },
      el("thead", {}, el("tr", {}, ["elf", "done", "total", "running", "failed", "skipped"].map((h) => el("th", { class: h === "elf" ? null : "num" }, h)))),
      el("tbody", {}, data.elves.map((e) => el("tr", {},
        el("td", { class: "mono" }, e.elf),
        [e.done, e.total, e.running, e.failed, e.skipped].map((n) => el("td", { class: "num" }, n)))))));
  }
  if (config.actions.length && r.status === "running") {
    const msg = el("span", { class: "muted" });
    out.push(el("p", { class: "actions" }, config.actions.map((name) => el("button", {
      type: "button", dataset: { action: name }, on: { click: async (ev) => {
        ev.target.disabled = true;
        try { msg.textContent = (await post(`/api/runs/${encodeURIComponent(r.id)}/${name}`)).message; }
        catch (error) { msg.textContent = error.message; msg.className = "error"; }
      } },
    }, name[0].toUpperCase() + name.slice(1) + " run")), msg));
  }
  return out;
}

function drawGraph(g) {
  const root = svg("svg", { width: g.width, height: g.height, viewBox: `0 0 ${g.width} ${g.height}`, role: "img" },
    svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
      svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#5a5a5a" }))));
  g.title.split("\n").forEach((line, i) =>
    root.append(svg("text", { x: 16, y: 20 + 16 * i, "font-weight": i === 0 ? 600 : null }, line)));
  for (const c of g.clusters) {
    root.append(svg("rect", { x: c.x, y: c.y, width: c.w, height: c.h, rx: 8, fill: "#f8f9fb", stroke: "#7a7a7a", "stroke-dasharray": "4 3" }));
    root.append(svg("text", { x: c.x + 8, y: c.y + 14, fill: "#555" }, c.label));
  }
  for (const a of g.arrows) {
    root.append(svg("line", { x1: a.x1, y1: a.y1, x2: a.x2, y2: a.y2, stroke: "#5a5a5a", "marker-end": "url(#arrow)" }));
    if (a.label) root.append(svg("text", { x: (a.x1 + a.x2) / 2 + 4, y: (a.y1 + a.y2) / 2, fill: "#444", "font-size": 10 }, a.label));
  }
  for (const b of g.boxes) {
    const group = svg("g", { class: "node", "data-node": b.id, "data-status": b.status || b.scheme },
      svg("title", {}, `${b.id}: ${b.lines.join(" · ")}`),
      svg("rect", { x: b.x, y: b.y, width: b.w, height: b.h, rx: b.kind === "derive" ? b.h / 2 : 4, fill: b.fill, stroke: b.border, "stroke-width": 1.3, "stroke-dasharray": b.dashed ? "4 3" : null }));
    b.lines.forEach((line, i) => group.append(svg("text", { x: b.x + b.w / 2, y: b.y + 6 + 16 * (i + 1) - 4, "text-anchor": "middle", fill: b.text }, line)));
    root.append(group);
  }
  const out = [root];
  for (const w of g.warnings) out.unshift(el("p", { class: "warn" }, w));
  return el("div", {}, out);
}

function drawGantt(t) {
  if (!t.lanes.length) return el("p", { class: "muted" }, "No job has started yet.");
  const labelWidth = 280, width = 900, lane = 20, top = 24;
  const span = Math.max(t.end - t.start, 1e-3);
  const x = (time) => labelWidth + ((time - t.start) / span) * width;
  const height = top + lane * t.lanes.length + 8;
  const root = svg("svg", { width: labelWidth + width + 16, height, role: "img" });
  for (let i = 0; i <= 4; i++) {
    const at = t.start + (span * i) / 4;
    root.append(svg("line", { x1: x(at), y1: top - 6, x2: x(at), y2: height, stroke: "#e3e3e3" }));
    root.append(svg("text", { x: x(at), y: 14, "text-anchor": i === 4 ? "end" : "start", fill: "#666" }, "+" + seconds(at - t.start)));
  }
  t.lanes.forEach((l, i) => {
    const y = top + i * lane;
    const row = svg("g", { class: "lane", "data-worker": l.worker, "data-elf": l.elf });
    row.append(svg("text", { x: 4, y: y + 14 }, `${l.elf} · ${l.worker.slice(0, 24)}`),
      svg("title", {}, `${l.elf} on ${l.worker}: ${l.jobs} jobs, busy ${seconds(l.busy)}`));
    for (const b of l.bars) {
      const c = config.colours[b.status] || { fill: "#ddd", border: "#999" };
      row.append(svg("rect", { x: x(b.start), y: y + 3, width: Math.max(x(b.end) - x(b.start), 1), height: lane - 6, fill: c.fill, stroke: c.border, "stroke-width": 0.6 },
        svg("title", {}, b.jobs > 1 ? `${b.jobs} jobs from ${b.key}, ${seconds(b.end - b.start)}` : `${b.key} ${b.status}, ${seconds(b.end - b.start)}`)));
    }
    root.append(row);
  });
  const notes = [];
  if (t.merged) notes.push("Close bars are merged to keep the chart light; hover for their job counts.");
  if (t.waiting) notes.push(`${t.waiting} jobs not started.`);
  return el("div", {}, notes.length ? el("p", { class: "muted" }, notes.join(" ")) : null, root);
}

function jobTable(data, state, refresh) {
  const pages = Math.max(1, Math.ceil(data.total / data.limit));
  const page = Math.floor(data.offset / data.limit) + 1;
  const go = (offset) => { state.offset = Math.max(0, offset); refresh(); };
  const filter = el("select", { id: "job-status", on: { change: (ev) => { state.status = ev.target.value; state.offset = 0; refresh(); } } },
    el("option", { value: "" }, "any status"),
    config.job_statuses.map((s) => el("option", { value: s, selected: s === state.status }, s)));
  const jump = el("input", { id: "job-page", type: "number", min: 1, max: pages, value: page, style: "width:6em" });
  const pager = el("div", { class: "pager" }, filter,
    el("button", { type: "button", id: "prev", disabled: data.offset <= 0, on: { click: () => go(data.offset - data.limit) } }, "‹ prev"),
    el("span", { id: "page-info" }, `jobs ${data.total ? data.offset + 1 : 0}–${data.offset + data.jobs.length} of ${data.total} · page `),
    jump,
    el("span", {}, ` of ${pages}`),
    el("button", { type: "button", on: { click: () => go((Number(jump.value) - 1) * data.limit) } }, "go"),
    el("button", { type: "button", id: "next", disabled: data.offset + data.limit >= data.total, on: { click: () => go(data.offset + data.limit) } }, "next ›"));
  const table = el("table", { id: "job-table" },
    el("thead", {}, el("tr", {}, ["key", "elf", "task", "status", "attempts", "duration", "worker"].map((h) => el("th", { class: h === "attempts" || h === "duration" ? "num" : null }, h)))),
    el("tbody", {}, data.jobs.map((j) => el("tr", { dataset: { key: j.key } },
      el("td", { class: "id" }, link(jobHref(j.id), j.key)),
      el("td", { class: "mono" }, j.elf),
      el("td", { class: "mono" }, j.task),
      el("td", {}, badge(j.status), j.cached_from ? el("span", { class: "muted cached", title: "reused the result of job " + j.cached_from }, " cached") : null),
      el("td", { class: "num" }, j.attempts),
      el("td", { class: "num" }, seconds(j.duration)),
      el("td", { class: "mono" }, j.worker || "–")))));
  return [pager, table];
}

// -- a job -----------------------------------------------------------------------------------

async function jobPage(jobId) {
  const mine = generation;
  async function refresh() {
    const d = await api("/api/jobs/" + jobId.split("/").map(encodeURIComponent).join("/"));
    if (mine !== generation) return d;
    show(...jobView(d));
    return d;
  }
  const d = await refresh();
  if (["pending", "ready", "running"].includes(d.job.status)) live("?run=" + encodeURIComponent(d.job.run), refresh);
}

function sourceBlock(text, first, hit, id) {
  return el("div", { class: "source", id }, text.replace(/\n$/, "").split("\n").map((line, i) =>
    el("div", { class: first + i === hit ? "hit" : null }, el("span", { class: "no" }, first + i), line)));
}

function jobView(d) {
  const j = d.job;
  const out = [
    el("h1", {}, `Job ${j.key} `, badge(j.status)),
    el("dl", { class: "facts" },
      el("dt", {}, "id"), el("dd", { class: "mono" }, j.id),
      el("dt", {}, "run"), el("dd", {}, link("/runs/" + encodeURIComponent(j.run), j.run, { class: "mono" })),
      el("dt", {}, "task"), el("dd", { class: "mono" }, `${j.elf}.${j.task}`),
      el("dt", {}, "revision"), el("dd", { class: "mono" }, j.revision),
      el("dt", {}, "attempts"), el("dd", {}, j.attempts),
      j.cached_from ? [el("dt", {}, "cached"), el("dd", { id: "cached-from" }, "reused the result of job ", link(jobHref(j.cached_from), j.cached_from, { class: "mono" }))] : null,
      el("dt", {}, "waits on"), el("dd", { class: "mono" }, j.deps.length ? short(j.deps, 200) : "–")),
    el("h2", {}, "Arguments"),
    el("pre", { id: "arguments" }, json({ args: j.args, kwargs: j.kwargs })),
    el("h2", {}, "Result"),
    d.has_result ? el("pre", { id: "result" }, json(d.result)) : el("p", { class: "muted", id: "result" }, "no result stored"),
  ];
  if (j.failure) {
    const f = j.failure;
    out.push(el("h2", {}, "Failure"),
      el("p", { class: "error", id: "failure" }, `${f.error_type}: ${f.message}`),
      el("p", { class: "muted" }, `seen ${f.count}× · first ${when(f.first_seen)} · last ${when(f.last_seen)}`),
      el("pre", { id: "traceback" }, f.traceback));
  }
  out.push(el("h2", {}, "Attempts"), d.attempts.length ? el("table", { id: "attempts" },
    el("thead", {}, el("tr", {}, ["#", "worker", "started", "ended", "outcome"].map((h) => el("th", {}, h)))),
    el("tbody", {}, d.attempts.map((a) => el("tr", {},
      el("td", {}, a.number), el("td", { class: "mono" }, a.worker), el("td", {}, when(a.started)),
      el("td", {}, when(a.ended)), el("td", {}, badge(a.outcome), " ", a.note)))))
    : el("p", { class: "muted" }, "not run yet"));
  out.push(el("h2", {}, "Status history"), el("table", { id: "history" },
    el("tbody", {}, j.history.map(([t, status, note]) => el("tr", {},
      el("td", {}, when(t)), el("td", {}, badge(status)), el("td", { class: "mono" }, note))))));
  out.push(el("h2", {}, "Pipeline line"));
  if (d.origin && d.origin.inlined) {
    out.push(el("p", {}, `made by the inlined pipeline node ${d.origin.node} of ${d.origin.pipeline}`));
  } else if (d.origin) {
    out.push(el("p", { class: "mono", id: "origin" }, `${d.origin.path}:${d.origin.line}  ${d.origin.source}`));
  } else {
    out.push(el("p", { class: "muted" }, "the run's template is not stored"));
  }
  if (d.pipeline) {
    out.push(sourceBlock(d.pipeline.record.source, d.pipeline.first_line, d.pipeline.highlight, "pipeline-source"));
  }
  out.push(el("h2", {}, `Task source at revision ${j.revision}`),
    d.task_source ? sourceBlock(d.task_source.source, 1, null, "task-source") : el("p", { class: "muted" }, "not stored"));
  if (d.task_source) out.push(diffForm(j.revision));
  return out;
}

function diffForm(revision) {
  const input = el("input", { id: "diff-revision", class: "mono", placeholder: "another revision (hash or prefix)", size: 34 });
  const result = el("div", { id: "diff" });
  const form = el("form", { class: "filters", on: { submit: async (ev) => {
    ev.preventDefault();
    try {
      const d = await api(`/api/diff?a=${encodeURIComponent(revision)}&b=${encodeURIComponent(input.value.trim())}`);
      result.replaceChildren(d.lines.length
        ? el("pre", {}, d.lines.map((line) => el("span", { class: line[0] === "+" ? "add" : line[0] === "-" ? "del" : null }, line + "\n")))
        : el("p", { class: "muted" }, "the two revisions have the same source"));
    } catch (error) {
      result.replaceChildren(el("p", { class: "error" }, error.message));
    }
  } } }, el("label", {}, "diff against", input), el("button", { type: "submit" }, "Diff"));
  return el("div", {}, form, result);
}

// -- failures, elves -------------------------------------------------------------------------

async function failuresPage() {
  const data = await api("/api/failures?limit=100");
  if (!data.failures.length) return show(el("h1", {}, "Failures"), el("p", { class: "muted" }, "No failures."));
  show(el("h1", {}, "Failures"), el("p", { class: "muted" }, "One row per distinct traceback, and one per run whose value was refused, most recently seen first."),
    el("table", { id: "failures" },
      el("thead", {}, el("tr", {}, ["error", "task", "revision", "jobs", "raised by", "first seen", "last seen"].map((h) => el("th", { class: h === "jobs" ? "num" : null }, h)))),
      el("tbody", {}, data.failures.map((f) => el("tr", { dataset: { failure: f.hash } },
        el("td", {}, el("details", {}, el("summary", { class: "error" }, `${f.error_type}: ${f.message}`), el("pre", {}, f.traceback))),
        // A run's own failure (its value refused by its return annotation) names the run and
        // its pipeline; a job failure the task and the jobs that raised it.
        el("td", { class: "mono" }, f.run ? `pipeline ${f.task}` : `${f.elf}.${f.task}`),
        el("td", { class: "mono" }, f.revision.slice(0, 12)),
        el("td", { class: "num" }, f.count),
        f.run
          ? el("td", { class: "mono" }, "run ", link("/runs/" + encodeURIComponent(f.run), f.run.slice(0, 8)), " (its value)")
          : el("td", { class: "mono" }, f.jobs.map((j, i) => [i ? ", " : "", link(jobHref(j.id), `${j.run.slice(0, 8)}/${j.key}`)]),
            f.jobs.length >= 10 ? " …" : ""),
        el("td", {}, when(f.first_seen)),
        el("td", {}, when(f.last_seen)))))));
}

async function elvesPage() {
  const mine = generation;
  const box = el("div", {});
  show(el("h1", {}, "Elves and workers"), box);
  async function refresh() {
    const data = await api("/api/elves");
    if (mine !== generation) return;
    if (!data.elves.length) return box.replaceChildren(el("p", { class: "muted" }, "No elf has been recorded yet."));
    box.replaceChildren(...data.elves.map((e) => el("section", { dataset: { elf: e.name } },
      el("h2", {}, `${e.name} `, el("span", { class: "muted" }, `${e.live} live worker${e.live === 1 ? "" : "s"}`)),
      e.record ? el("dl", { class: "facts" },
        el("dt", {}, "class"), el("dd", { class: "mono" }, `${e.record.module}.${e.record.cls}`),
        el("dt", {}, "configuration"), el("dd", { class: "mono" }, e.record.config),
        el("dt", {}, "revision"), el("dd", { class: "mono" }, e.record.revision),
        el("dt", {}, "last seen"), el("dd", {}, when(e.record.last_seen))) : null,
      e.workers.length ? el("table", {},
        el("thead", {}, el("tr", {}, ["worker", "host", "pid", "started", "heartbeat", ""].map((h) => el("th", {}, h)))),
        el("tbody", {}, e.workers.map((w) => el("tr", { dataset: { worker: w.id } },
          el("td", { class: "mono" }, w.id), el("td", {}, w.host), el("td", {}, w.pid),
          el("td", {}, when(w.started)), el("td", {}, `${seconds(w.age)} ago`),
          el("td", {}, w.stale ? el("span", { class: "stale" }, "stale") : "live")))))
        : el("p", { class: "muted" }, "no workers"))));
  }
  await refresh();
  setTimeout(function tick() { // heartbeat ages move without any change in the mycelium
    if (mine !== generation) return;
    refresh().finally(() => setTimeout(tick, 5000));
  }, 5000);
}

// -- routing ---------------------------------------------------------------------------------

async function route() {
  generation += 1;
  if (source) { source.close(); source = null; document.getElementById("live").classList.remove("on"); }
  const path = location.pathname;
  const params = new URLSearchParams(location.search);
  let nav = "runs";
  try {
    if (path.startsWith("/runs/")) await runPage(decodeURIComponent(path.slice(6)), params);
    else if (path.startsWith("/jobs/")) await jobPage(path.slice(6).split("/").map(decodeURIComponent).join("/"));
    else if (path === "/failures") { nav = "failures"; await failuresPage(); }
    else if (path === "/elves") { nav = "elves"; await elvesPage(); }
    else await runsPage(params);
  } catch (error) {
    fail(error);
  }
  for (const a of document.querySelectorAll("header nav a")) a.classList.toggle("here", a.dataset.nav === nav);
  document.body.dataset.ready = String(generation);
}

async function start() {
  config = await api("/api/config");
  document.getElementById("mycelium").textContent = config.mycelium;
  await route();
}

start().catch(fail);
