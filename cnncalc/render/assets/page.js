// cnncalc's page for one network: draws the report's JSON (embedded in #cnncalc-data); computes no number.
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("cnncalc-data").textContent);
  const SVG = "http://www.w3.org/2000/svg";
  const ROWS = D.layers;
  const BY_NAME = new Map(ROWS.map((r) => [r.name, r]));
  const DEPTH_ROWS = {};  // depth -> name -> row (a collapsed block's sums, as `--depth` makes them)
  for (const [d, rows] of Object.entries(D.depths)) DEPTH_ROWS[d] = new Map(rows.map((r) => [r.name, r]));
  const VISIBLE_LIMIT = 60;  // nodes shown at once by default: blocks past it start collapsed
  const NODE_W = 190, NODE_H = 50;
  const BYTES_PER = D.totals.activation_bytes / Math.max(1, D.totals.activations_with_input);

  // ----- helpers ------------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") e.textContent = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }
  function sv(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }
  const exact = (n) => Number(n).toLocaleString("en-US");
  function human(n) {
    for (const [u, s] of [["E", 1e18], ["P", 1e15], ["T", 1e12], ["G", 1e9], ["M", 1e6], ["K", 1e3]])
      if (Math.abs(n) >= s) return (n / s).toFixed(1) + u;
    return String(n);
  }
  function humanBytes(n) {
    for (const [u, s] of [["EiB", 2 ** 60], ["PiB", 2 ** 50], ["TiB", 2 ** 40], ["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 2 ** 10]])
      if (n >= s) return (n / s).toFixed(1) + " " + u;
    return n + " B";
  }
  const both = (n) => (n >= 1000 ? exact(n) + " (" + human(n) + ")" : exact(n));
  // shapes print as `summary` prints them by default (H x W x C); the JSON has them channels first
  const shapeText = (s) => (s.length > 1 ? [...s.slice(1), s[0]] : s).join("x");
  const parts = (name) => name.split(".");
  const prefixes = (name) => { const p = parts(name); const out = []; for (let i = 1; i < p.length; i++) out.push(p.slice(0, i).join(".")); return out; };

  // ----- the block tree: every dotted prefix of a row name with rows under it is a block ------------
  const GROUPS = new Map();  // prefix -> {name, depth, leaves: [row names], children: [unit ids]}
  for (const r of ROWS) for (const p of prefixes(r.name)) {
    if (!GROUPS.has(p)) GROUPS.set(p, { name: p, depth: parts(p).length, leaves: [] });
    GROUPS.get(p).leaves.push(r.name);
  }
  const ROW_PREFIXES = new Map(ROWS.map((r) => [r.name, prefixes(r.name)]));
  const expanded = new Set();
  const gid = (p) => "g:" + p;
  function unitOf(name) {  // the node that shows row `name` now: the row, or its outermost collapsed block
    for (const p of ROW_PREFIXES.get(name) || prefixes(name)) if (!expanded.has(p)) return gid(p);
    return name;
  }
  function visibleUnits() { return new Set(ROWS.map((r) => unitOf(r.name))); }
  function defaultExpansion() {  // open whole levels of blocks, the shallowest first, while the graph stays under VISIBLE_LIMIT nodes
    const deepest = Math.max(0, ...[...GROUPS.values()].map((g) => g.depth));
    for (let d = 1; d <= deepest; d++) {
      const level = [...GROUPS.values()].filter((g) => g.depth === d).map((g) => g.name);
      for (const p of level) expanded.add(p);
      if (visibleUnits().size > VISIBLE_LIMIT) { for (const p of level) expanded.delete(p); break; }
    }
  }
  function groupRow(prefix) {  // a collapsed block's row: `summary --depth N` of its depth
    const rows = DEPTH_ROWS[String(parts(prefix).length)];
    return rows ? rows.get(prefix) : undefined;
  }
  function unitRow(id) { return id.startsWith("g:") ? groupRow(id.slice(2)) : BY_NAME.get(id); }

  // ----- state ----------------------------------------------------------------------------------
  let metric = "macs";
  let selected = null;  // a row name or a block's prefix
  let tableDepth = "all";
  let sortKey = null, sortDir = 1;

  // ----- page skeleton --------------------------------------------------------------------------
  const app = document.getElementById("app");
  const metricSelect = el("select", { id: "metric", "aria-label": "Shade nodes by" },
    el("option", { value: "macs", text: "MACs" }), el("option", { value: "params", text: "params" }),
    el("option", { value: "activation_bytes", text: "activation bytes" }));
  const depthSelect = el("select", { id: "depth", "aria-label": "Table depth" }, el("option", { value: "all", text: "every row" }));
  for (const d of Object.keys(D.depths)) depthSelect.append(el("option", { value: d, text: "--depth " + d }));
  app.append(
    el("header", {},
      el("h1", { text: D.name }),
      el("span", { class: "sub", text: "input " + shapeText(D.input) + " (HxWxC) \u00b7 batch " + D.batch + " \u00b7 " + D.dtype + " \u00b7 style " + D.style }),
      el("label", {}, "shade by ", metricSelect),
      el("label", {}, "table ", depthSelect)),
    el("main", {},
      el("div", { id: "graph-pane" },
        el("div", { id: "graph-tools" },
          el("button", { id: "expand-all", text: "expand all", title: "Expand every block (slow for the largest networks)" }),
          el("button", { id: "collapse-all", text: "collapse all" }),
          el("button", { id: "zoom-out", text: "\u2212", "aria-label": "zoom out" }),
          el("button", { id: "zoom-in", text: "+", "aria-label": "zoom in" }),
          el("span", { class: "hint", text: "click a node; + expands a block, \u2212 collapses it (keys + and \u2212 too)" })),
        el("div", { id: "graph" })),
      el("div", { id: "side" },
        el("section", { id: "details" }, el("h2", { text: "Layer" }), el("p", { class: "muted", text: "Click a node or a row." })),
        el("section", { id: "totals" }),
        el("section", { id: "memory" }),
        el("section", { id: "table-section" }, el("h2", { text: "Table" }), el("div", { id: "table-wrap" }, el("table", { id: "table" }))))));

  // ----- the graph ------------------------------------------------------------------------------
  let zoom = 1;
  const graphDiv = document.getElementById("graph");
  function metricOf(row) { return row ? row[metric] || 0 : 0; }

  function layoutGraph() {
    const units = visibleUnits();
    const g = new dagre.graphlib.Graph({ compound: true, multigraph: false });
    g.setGraph({ rankdir: "TB", nodesep: 18, ranksep: 26, marginx: 12, marginy: 12 });
    g.setDefaultEdgeLabel(() => ({}));
    const clusters = new Set();
    for (const u of units) {
      g.setNode(u, { width: NODE_W, height: NODE_H });
      const name = u.startsWith("g:") ? u.slice(2) : u;
      const ps = prefixes(name);
      if (ps.length) {  // inside every expanded block above it
        for (let i = 0; i < ps.length; i++) {
          if (!clusters.has(ps[i])) { clusters.add(ps[i]); g.setNode(gid(ps[i]) + "#", { label: ps[i] }); if (i) g.setParent(gid(ps[i]) + "#", gid(ps[i - 1]) + "#"); }
        }
        g.setParent(u, gid(ps[ps.length - 1]) + "#");
      }
    }
    for (const r of ROWS) {
      const b = unitOf(r.name);
      for (const i of r.inputs) { const a = unitOf(i); if (a !== b) g.setEdge(a, b); }
    }
    dagre.layout(g);
    return g;
  }

  function drawGraph() {
    const g = layoutGraph();
    const W = g.graph().width, H = g.graph().height;
    const svg = sv("svg", { id: "graph-svg", width: W * zoom, height: H * zoom, viewBox: "0 0 " + W + " " + H, role: "group", "aria-label": "layer graph" });
    const defs = sv("defs");
    const marker = sv("marker", { id: "arrow", viewBox: "0 0 8 8", refX: 7, refY: 4, markerWidth: 7, markerHeight: 7, orient: "auto" });
    marker.append(sv("path", { d: "M0,0 L8,4 L0,8 z" }));
    defs.append(marker); svg.append(defs);
    // blocks that are open: a box around their nodes, its label collapses it
    const ids = g.nodes().filter((n) => n.endsWith("#")).sort((a, b) => a.length - b.length), TITLE = 8;
    const titles = sv("g", { class: "cluster-titles" });  // drawn after the edges, which would cross them
    for (const id of ids) {
      const n = g.node(id), prefix = id.slice(2, -1);
      const box = sv("g", { class: "cluster", "data-name": prefix });
      // dagre leaves no room for a title: the box grows TITLE px upwards (into the rank gap), so that
      // an edge into the block's first node shows its arrow below the title rather than under it
      const top = n.y - n.height / 2 - TITLE;
      box.append(sv("rect", { x: n.x - n.width / 2, y: top, width: n.width, height: n.height + TITLE, rx: 6 }));
      const t = sv("text", { class: "cluster-title", "data-name": prefix, x: n.x - n.width / 2 + 6, y: top + 12, tabindex: 0, role: "button", "aria-label": "collapse " + prefix });
      const type = D.containers[prefix];
      t.textContent = "\u2212 " + prefix + (type ? "  (" + type + ")" : "");
      t.addEventListener("click", (e) => { e.stopPropagation(); collapse(prefix); });
      t.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); collapse(prefix); } });
      titles.append(t); svg.append(box);
    }
    for (const e of g.edges()) {
      const pts = g.edge(e).points;
      const d = "M" + pts.map((p) => p.x.toFixed(1) + "," + p.y.toFixed(1)).join(" L");
      svg.append(sv("path", { class: "edge", d: d, "marker-end": "url(#arrow)" }));
    }
    svg.append(titles);
    const units = g.nodes().filter((n) => !n.endsWith("#"));
    const max = Math.max(1, ...units.map((u) => metricOf(unitRow(u))));
    for (const u of units) {
      const n = g.node(u), row = unitRow(u), isGroup = u.startsWith("g:");
      const name = isGroup ? u.slice(2) : u;
      const x = n.x - NODE_W / 2, y = n.y - NODE_H / 2;
      const node = sv("g", { class: "node" + (isGroup ? " group" : ""), "data-name": name, tabindex: 0, role: "button",
        "aria-label": name + (isGroup ? " (collapsed block)" : "") });
      node.append(sv("rect", { class: "box", x: x, y: y, width: NODE_W, height: NODE_H, rx: 5 }));
      const share = metricOf(row) / max;
      node.append(sv("rect", { class: "heat", x: x + 1, y: y + NODE_H - 5, width: Math.max(share > 0 ? 2 : 0, (NODE_W - 2) * share), height: 4 }));
      const label = (cls, dy, text) => { const t = sv("text", { class: cls, x: x + 8, y: y + dy }); t.textContent = text; node.append(t); return t; };
      label("name", 14, (isGroup ? "+ " : "") + clip(name, 30));
      const leaves = isGroup ? GROUPS.get(name).leaves.length : 1;
      label("kind", 29, clip(row ? row.type : "", 16) + (isGroup ? "  \u00b7 " + leaves + " layers" : ""));
      label("shape", 43, row ? shapeText(row.output_shape) : "");
      const title = sv("title"); title.textContent = name + ": " + metricSelect.selectedOptions[0].text + " " + exact(metricOf(row)); node.append(title);
      node.addEventListener("click", () => select(name, "graph"));
      node.addEventListener("dblclick", () => { if (isGroup) expand(name); });
      node.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); select(name, "graph"); }
        else if (e.key === "+" && isGroup) expand(name);
        else if (e.key === "-") { const p = prefixes(name); if (isGroup && expanded.has(name)) collapse(name); else if (p.length) collapse(p[p.length - 1]); }
      });
      svg.append(node);
    }
    graphDiv.replaceChildren(svg);
    markSelected();
  }
  function clip(text, n) { return text.length > n ? "\u2026" + text.slice(text.length - n + 1) : text; }
  function expand(prefix) { expanded.add(prefix); for (const p of prefixes(prefix)) expanded.add(p); selected = prefix; drawGraph(); focusNode(); renderDetails(); }
  function collapse(prefix) { for (const p of [...expanded]) if (p === prefix || p.startsWith(prefix + ".")) expanded.delete(p); selected = prefix; drawGraph(); focusNode(); renderDetails(); }
  function focusNode() { const n = graphDiv.querySelector('.node.selected'); if (n) { n.focus({ preventScroll: true }); n.scrollIntoView({ block: "center", inline: "center" }); } }

  // ----- selection ------------------------------------------------------------------------------
  function reveal(name) {  // open the blocks above `name` so that it shows; true when the graph must be redrawn
    let changed = false;
    for (const p of prefixes(name)) if (!expanded.has(p)) { expanded.add(p); changed = true; }
    return changed;
  }
  function select(name, from) {
    selected = name;
    if (from === "table" && reveal(name)) drawGraph(); else markSelected();
    if (from === "table") { const n = graphDiv.querySelector('[data-name="' + CSS.escape(name) + '"]'); if (n) n.scrollIntoView({ block: "center", inline: "center" }); }
    renderDetails();
    markTable(from !== "table");
  }
  function markSelected() {
    for (const n of graphDiv.querySelectorAll(".selected")) n.classList.remove("selected");
    if (selected === null) return;
    const n = graphDiv.querySelector('.node[data-name="' + CSS.escape(selected) + '"]') || graphDiv.querySelector('.cluster[data-name="' + CSS.escape(selected) + '"]');
    if (n) n.classList.add("selected");
  }
  function tableNameFor(name) {  // the table row that holds `name` at the table's depth
    if (tableDepth === "all") return name;
    const p = parts(name), d = Number(tableDepth);
    return p.length > d ? p.slice(0, d).join(".") : name;
  }
  function markTable(scroll) {
    const body = document.querySelector("#table tbody");
    for (const tr of body.querySelectorAll("tr.selected")) tr.classList.remove("selected");
    if (selected === null) return;
    const target = tableNameFor(selected);
    const hits = [...body.querySelectorAll("tr")].filter((tr) => tr.dataset.name === target || tr.dataset.name.startsWith(target + "."));
    for (const tr of hits) tr.classList.add("selected");
    if (scroll && hits.length) hits[0].scrollIntoView({ block: "nearest" });
  }

  // ----- the selected row in full ---------------------------------------------------------------
  function fieldText(f, key) { return f[key].map((v) => (Number.isInteger(v) ? String(v) : v.toFixed(2))).join("x"); }
  function renderDetails() {
    const box = document.getElementById("details");
    if (selected === null) return;
    const isGroup = !BY_NAME.has(selected) || (GROUPS.has(selected) && !BY_NAME.has(selected));
    const row = isGroup ? groupRow(selected) : BY_NAME.get(selected);
    const body = el("tbody");
    const add = (k, v) => body.append(el("tr", {}, el("td", { text: k }), el("td", { class: "v", "data-key": k, text: v })));
    const out = [el("h2", { text: (isGroup ? "Block " : "Layer ") + selected })];
    if (!row) { box.replaceChildren(...out); return; }
    add("type", row.type);
    add("output shape", shapeText(row.output_shape) + " (HxWxC; channels first " + JSON.stringify(row.output_shape) + ")");
    if (!isGroup) add("inputs", row.inputs.join(", ") || "-");
    if (isGroup) add("layers", String(row.leaves) + " (the numbers below are their sums, as --depth " + parts(selected).length + " prints them)");
    add("activations", both(row.activations) + " elements, one sample");
    add("activation bytes", exact(row.activation_bytes) + " B (" + humanBytes(row.activation_bytes) + ") at batch " + D.batch + ", " + D.dtype);
    add("weights", both(row.weights));
    add("biases", both(row.biases));
    add("params", both(row.params));
    add("buffers", both(row.buffers));
    add("MACs", both(row.macs));
    add("FLOPs (2xMACs)", both(row.flops));
    for (const [conv, c] of Object.entries(D.conventions)) if (!isGroup && conv !== "cnncalc" && row.name in c.rows) add(conv, both(c.rows[row.name]));
    const f = row.receptive_field;
    if (f !== undefined) {
      if (typeof f === "string") add("receptive field", f);
      else {
        add("receptive field", (f.size_min ? fieldText(f, "size_min") + ".." : "") + fieldText(f, "size") + " input pixels");
        add("jump", fieldText(f, "jump"));
        add("start", fieldText(f, "start"));
      }
    }
    out.push(el("table", {}, body));
    if (row.working && row.working.length) out.push(el("h2", { text: "Working (--explain)" }), el("pre", { id: "working", text: row.working.join("\n") }));
    if (isGroup) {
      const open = expanded.has(selected);
      out.push(el("button", { id: "toggle-block", text: open ? "collapse this block" : "expand this block", onclick: () => (open ? collapse(selected) : expand(selected)) }));
    }
    box.replaceChildren(...out);
  }

  // ----- totals -----------------------------------------------------------------------------------
  function renderTotals() {
    const t = D.totals;
    const body = el("tbody");
    const add = (k, label, v, note) => body.append(el("tr", {}, el("td", { text: label }), el("td", { class: "num", "data-key": k, text: exact(v) }), el("td", { class: "muted", text: note || "" })));
    add("weights", "weights", t.weights, human(t.weights)); add("biases", "biases", t.biases, human(t.biases));
    add("params", "params", t.params, human(t.params)); add("buffers", "buffers", t.buffers);
    add("macs", "MACs", t.macs, human(t.macs) + " per sample"); add("flops", "FLOPs (2 x MACs)", t.flops, human(t.flops));
    add("activations", "activations", t.activations, "elements, input left out");
    add("activations_with_input", "activations with input", t.activations_with_input);
    add("stored_activations", "new tensors", t.stored_activations, "views are not");
    add("peak_activations", "peak live (inference)", t.peak_activations, "elements");
    add("activation_bytes", "activation bytes", t.activation_bytes, humanBytes(t.activation_bytes));
    add("peak_activation_bytes", "peak live bytes", t.peak_activation_bytes, humanBytes(t.peak_activation_bytes));
    add("param_bytes", "parameter bytes", t.param_bytes, humanBytes(t.param_bytes));
    add("predicted_inference", "predicted peak, inference", t.predicted_peak_bytes.inference, humanBytes(t.predicted_peak_bytes.inference));
    add("predicted_training", "predicted peak, training step", t.predicted_peak_bytes.training, humanBytes(t.predicted_peak_bytes.training));
    const convs = Object.entries(D.conventions).filter(([k]) => k !== "cnncalc");
    const section = document.getElementById("totals");
    section.replaceChildren(el("h2", { text: "Totals" }), el("table", { id: "totals-table" }, body),
      el("p", { id: "counted" }, el("strong", { text: "Convention: cnncalc. " }), D.counts + "."),
      ...convs.map(([k, c]) => el("p", { class: "convention", "data-convention": k }, el("strong", { text: k + ": " + both(c.total) + ". " }), c.counts + ".")),
      el("ul", { class: "lines" }, ...D.totals_lines.map((line) => el("li", { text: line }))),
      ...D.warnings.map((w) => el("p", { class: "muted", text: "warning: " + w.layer + ": " + w.message })));
  }

  // ----- memory over time ---------------------------------------------------------------------------
  function memChart(id, title, series, extra, holders, predicted, base, cls) {
    const W = 640, H = 170, L = 8, R = 8, T = 14, B = 16;
    const values = extra === null ? series : [...series, extra];
    const max = Math.max(...values), n = values.length;
    const peakAt = values.indexOf(max);
    // the chart starts at what is held throughout (parameters, buffers, momentum): what moves is the activations
    const xOf = (i) => L + (W - L - R) * (i / Math.max(1, n - 1)), yOf = (v) => H - B - (H - T - B) * ((v - base) / Math.max(1, max - base));
    const svg = sv("svg", { class: "memchart", id: "chart-" + id, viewBox: "0 0 " + W + " " + H, preserveAspectRatio: "none", role: "img", "aria-label": title });
    let d = "M" + xOf(0) + "," + (H - B);
    values.forEach((v, i) => { d += " L" + xOf(i).toFixed(1) + "," + yOf(v).toFixed(1); });
    d += " L" + xOf(n - 1) + "," + (H - B) + " Z";
    svg.append(sv("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }), sv("path", { class: cls, d: d }));
    svg.append(sv("line", { class: "peakline", x1: L, x2: W - R, y1: yOf(max), y2: yOf(max) }));
    svg.append(sv("circle", { class: "peak", cx: xOf(peakAt), cy: yOf(max), r: 4 }));
    const cursor = sv("line", { class: "cursor", x1: 0, x2: 0, y1: T, y2: H - B, visibility: "hidden" });
    svg.append(cursor);
    const label = sv("text", { x: L, y: H - 3 }); label.textContent = "forward \u2192" + (extra === null ? "" : "  (last point: backward)") + "   baseline " + humanBytes(base) + " held throughout"; svg.append(label);
    const where = peakAt < series.length ? D.memory.rows[peakAt] : "the backward pass";
    const info = el("p", { class: "muted", id: "hover-" + id, text: "Hover the chart to read a row; click to select it." });
    svg.addEventListener("mousemove", (e) => {
      const box = svg.getBoundingClientRect();
      const i = Math.max(0, Math.min(n - 1, Math.round(((e.clientX - box.left) / box.width * W - L) / (W - L - R) * (n - 1))));
      cursor.setAttribute("x1", xOf(i)); cursor.setAttribute("x2", xOf(i)); cursor.setAttribute("visibility", "visible");
      info.textContent = (i < series.length ? D.memory.rows[i] : "backward pass") + ": " + exact(values[i]) + " B (" + humanBytes(values[i]) + ")";
      svg.dataset.hover = String(i);
    });
    svg.addEventListener("click", () => { const i = Number(svg.dataset.hover); if (i < series.length && BY_NAME.has(D.memory.rows[i])) select(D.memory.rows[i], "table"); });
    const shown = holders.slice(0, 12).join(", ") + (holders.length > 12 ? " and " + (holders.length - 12) + " more" : "");
    return el("div", { class: "memblock" }, el("h2", { text: title }), svg,
      el("p", {}, el("span", { class: "peak-text", id: "peak-" + id, "data-bytes": String(max), text: "peak " + exact(max) + " B (" + humanBytes(max) + ")" }),
        " at " + where + (max === predicted ? " = the predicted peak." : " (the predicted peak is " + exact(predicted) + " B).")),
      el("p", { class: "muted", text: (peakAt < series.length ? "Alive then: " + shown : "Then: gradients and momentum (2 x params, fp32), the input and every tensor the layers keep for backward.") }),
      info);
  }
  function renderMemory() {
    const m = D.memory, p = D.totals.predicted_peak_bytes;
    document.getElementById("memory").replaceChildren(
      el("p", { class: "muted", text: "Bytes held while each row runs, at batch " + D.batch + ", " + D.dtype + ": parameters and buffers (fp32) plus the live activations (docs/conventions.md)." }),
      memChart("inference", "Memory over time: inference", m.inference, null, m.inference_holders, p.inference, m.inference_base, "area1"),
      memChart("training", "Memory over time: a training step (SGD with momentum)", m.training, m.backward,
        Math.max(...m.training) >= m.backward ? m.training_holders : [], p.training, m.training_base, "area2"));
  }

  // ----- the table ----------------------------------------------------------------------------------
  const COLUMNS = [
    ["name", "Layer", false], ["type", "Type", false], ["output_shape", "Output", false], ["activations", "Activations", true],
    ["weights", "Weights", true], ["biases", "Biases", true], ["macs", "MACs", true]];
  function tableRows() { return tableDepth === "all" ? ROWS : D.depths[tableDepth]; }
  function renderTable() {
    const table = document.getElementById("table");
    const head = el("tr", {}, ...COLUMNS.map(([k, label, num]) => {
      const th = el("th", { class: num ? "num" : "", "data-key": k, tabindex: 0, scope: "col", text: label });
      if (sortKey === k) th.setAttribute("aria-sort", sortDir > 0 ? "ascending" : "descending");
      const sort = () => { if (sortKey === k) { sortDir = -sortDir; if (sortDir > 0) sortKey = null; } else { sortKey = k; sortDir = num ? -1 : 1; } renderTable(); };
      th.addEventListener("click", sort);
      th.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); } });
      return th;
    }));
    let rows = tableRows().slice();
    if (sortKey) {
      const key = (r) => (sortKey === "output_shape" ? r.output_shape.reduce((a, b) => a * b, 1) : r[sortKey]);
      rows.sort((a, b) => { const x = key(a), y = key(b); return (x < y ? -1 : x > y ? 1 : 0) * sortDir; });
    }
    const body = el("tbody");
    for (const r of rows) {
      const tr = el("tr", { "data-name": r.name, tabindex: 0 },
        ...COLUMNS.map(([k, , num]) => el("td", { class: num ? "num" : "", text: k === "output_shape" ? shapeText(r[k]) : num ? exact(r[k]) : r[k] })));
      tr.addEventListener("click", () => select(r.name, "table"));
      tr.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); select(r.name, "table"); }
        else if (e.key === "ArrowDown" && tr.nextSibling) { e.preventDefault(); tr.nextSibling.focus(); }
        else if (e.key === "ArrowUp" && tr.previousSibling) { e.preventDefault(); tr.previousSibling.focus(); }
      });
      body.append(tr);
    }
    const t = D.totals;
    const foot = el("tr", {}, el("td", { text: "total" }), el("td"), el("td"),
      el("td", { class: "num", text: exact(t.activations) }), el("td", { class: "num", text: exact(t.weights) }),
      el("td", { class: "num", text: exact(t.biases) }), el("td", { class: "num", text: exact(t.macs) }));
    table.replaceChildren(el("thead", {}, head), body, el("tfoot", {}, foot));
    table.dataset.rows = String(rows.length);
    markTable(false);
  }

  // ----- wiring -----------------------------------------------------------------------------------
  metricSelect.addEventListener("change", () => { metric = metricSelect.value; drawGraph(); });
  depthSelect.addEventListener("change", () => { tableDepth = depthSelect.value; renderTable(); });
  document.getElementById("expand-all").addEventListener("click", () => { for (const g of GROUPS.keys()) expanded.add(g); drawGraph(); });
  document.getElementById("collapse-all").addEventListener("click", () => { expanded.clear(); drawGraph(); });
  const setZoom = (z) => { zoom = Math.max(0.2, Math.min(3, z)); const s = document.getElementById("graph-svg"); const vb = s.viewBox.baseVal; s.setAttribute("width", vb.width * zoom); s.setAttribute("height", vb.height * zoom); };
  document.getElementById("zoom-in").addEventListener("click", () => setZoom(zoom * 1.25));
  document.getElementById("zoom-out").addEventListener("click", () => setZoom(zoom / 1.25));

  defaultExpansion();
  drawGraph();
  renderTotals();
  renderMemory();
  renderTable();
  document.body.dataset.readyMs = performance.now().toFixed(0);  // ms from navigation start to interactive (benchmarks/)
  document.body.dataset.ready = "true";  // drawn and interactive (the tests and the benchmark wait for it)
})();
