/* The admin's dependency graph (stories/admin_graph.py lays it out on the server; this
   draws it and makes it explorable): zoom / pan / fit, search, filters by epic, status
   and backlog, and the upstream / downstream highlight of a selected story.
   Plain DOM, no library. Text goes in with textContent only (never as markup). */
(function () {
  "use strict";
  const NS = "http://www.w3.org/2000/svg";
  const data = JSON.parse(document.getElementById("storyhub-graph-data").textContent);
  const svg = document.getElementById("storyhub-graph");
  const frame = document.getElementById("graph-frame");
  const viewport = svg.querySelector("g.viewport");
  const edgeLayer = svg.querySelector("g.edges");
  const nodeLayer = svg.querySelector("g.nodes");
  const stateLabel = Object.fromEntries(data.legend.map((l) => [l.state, l.label]));
  const byId = new Map();
  const up = new Map(); // id -> ids it waits for
  const down = new Map(); // id -> ids waiting for it
  const nodeEl = new Map();
  const edgeEls = [];
  let selected = null;

  function el(name, attrs, parent) {
    const e = document.createElementNS(NS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }

  function lines(text, max) {
    const words = text.split(/\s+/);
    const out = [""];
    for (const w of words) {
      const line = out[out.length - 1];
      if ((line + " " + w).trim().length <= max) out[out.length - 1] = (line + " " + w).trim();
      else out.push(w);
    }
    if (out.length > 2) out.splice(2, out.length, out[1].slice(0, max - 1) + "…");
    return out.map((l) => (l.length > max ? l.slice(0, max - 1) + "…" : l));
  }

  function describe(n) {
    if (n.hidden) return n.label + ": a story of a project you cannot see";
    return n.label + " — " + n.title + " [" + n.status + "; " + stateLabel[n.state] + (n.critical ? "; critical path" : "") + "]";
  }

  function draw() {
    const edgeFrag = document.createDocumentFragment();
    for (const e of data.edges) {
      const d = "M" + e.points.map((p) => p[0] + "," + p[1]).join(" L");
      const cls = "edge" + (e.open ? " open" : "") + (e.critical ? " critical" : "");
      const marker = e.critical ? "arrow-critical" : e.open ? "arrow-open" : "arrow";
      const path = el("path", { class: cls, d: d, "marker-end": "url(#" + marker + ")", "data-from": e.from, "data-to": e.to }, edgeFrag);
      edgeEls.push({ el: path, from: e.from, to: e.to });
      if (!up.has(e.to)) up.set(e.to, []);
      if (!down.has(e.from)) down.set(e.from, []);
      up.get(e.to).push(e.from);
      down.get(e.from).push(e.to);
    }
    const nodeFrag = document.createDocumentFragment();
    for (const n of data.nodes) {
      byId.set(n.id, n);
      const cls = "node state-" + n.state + (n.external ? " external" : "") + (n.critical ? " critical" : "");
      const g = el("g", {
        class: cls, transform: "translate(" + n.x + "," + n.y + ")", tabindex: "0", role: "button",
        "data-id": n.id, "data-key": n.label, "data-state": n.state,
      }, nodeFrag);
      el("title", {}, g).textContent = describe(n);
      el("rect", { class: "halo", x: -3, y: -3, width: n.w + 6, height: n.h + 6, rx: 7 }, g);
      el("rect", { class: "box", width: n.w, height: n.h, rx: 5 }, g);
      const key = el("text", { class: "key", x: 7, y: 14 }, g);
      const shown = [n.label.length > 24 ? n.label.slice(0, 23) + "…" : n.label];
      key.textContent = shown[0];
      const badge = n.hidden ? "" : n.state === "waiting" ? "waiting" : n.status.length > 14 ? n.status.slice(0, 13) + "…" : n.status;
      el("text", { class: "badge", x: n.w - 6, y: 13, "text-anchor": "end" }, g).textContent = badge;
      shown.push(badge);
      if (!n.hidden) {
        lines(n.title, 34).forEach((line, i) => {
          el("text", { class: "title", x: 7, y: 27 + i * 12 }, g).textContent = line;
          shown.push(line);
        });
      }
      // No aria-label: the accessible name is the visible text (WCAG 2.5.3); the full
      // story is the hover title and the panel's details.
      nodeEl.set(n.id, g);
    }
    edgeLayer.appendChild(edgeFrag);
    nodeLayer.appendChild(nodeFrag);
  }

  // ------------------------------------------------------------------ zoom and pan
  const view = { k: 1, x: 0, y: 0 };
  function apply() {
    viewport.setAttribute("transform", "translate(" + view.x + "," + view.y + ") scale(" + view.k + ")");
    svg.dataset.scale = view.k.toFixed(4);
  }
  function fit() {
    const w = frame.clientWidth, h = frame.clientHeight;
    view.k = Math.min(w / data.width, h / data.height, 1);
    view.x = (w - data.width * view.k) / 2;
    view.y = (h - data.height * view.k) / 2;
    apply();
  }
  function zoomAt(factor, cx, cy) {
    const k = Math.max(0.02, Math.min(4, view.k * factor));
    view.x = cx - ((cx - view.x) * k) / view.k;
    view.y = cy - ((cy - view.y) * k) / view.k;
    view.k = k;
    apply();
  }
  function centreOn(n) {
    view.k = Math.max(view.k, 0.8);
    view.x = frame.clientWidth / 2 - (n.x + n.w / 2) * view.k;
    view.y = frame.clientHeight / 2 - (n.y + n.h / 2) * view.k;
    apply();
  }
  frame.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const r = frame.getBoundingClientRect();
    zoomAt(ev.deltaY < 0 ? 1.15 : 1 / 1.15, ev.clientX - r.left, ev.clientY - r.top);
  }, { passive: false });
  let drag = null;
  frame.addEventListener("pointerdown", (ev) => {
    if (ev.target.closest && ev.target.closest(".node")) return;
    drag = { x: ev.clientX, y: ev.clientY, vx: view.x, vy: view.y };
    frame.classList.add("panning");
    frame.setPointerCapture(ev.pointerId);
  });
  frame.addEventListener("pointermove", (ev) => {
    if (!drag) return;
    view.x = drag.vx + ev.clientX - drag.x;
    view.y = drag.vy + ev.clientY - drag.y;
    apply();
  });
  frame.addEventListener("pointerup", () => { drag = null; frame.classList.remove("panning"); });
  const centre = () => [frame.clientWidth / 2, frame.clientHeight / 2];
  document.getElementById("graph-zoom-in").addEventListener("click", () => zoomAt(1.25, ...centre()));
  document.getElementById("graph-zoom-out").addEventListener("click", () => zoomAt(0.8, ...centre()));
  document.getElementById("graph-fit").addEventListener("click", fit);
  document.getElementById("graph-actual").addEventListener("click", () => { const [cx, cy] = centre(); zoomAt(1 / view.k, cx, cy); });

  // ------------------------------------------------------------------ highlight
  function walk(start, next) {
    const seen = new Set();
    const stack = [...(next.get(start) || [])];
    while (stack.length) {
      const id = stack.pop();
      if (seen.has(id)) continue;
      seen.add(id);
      for (const m of next.get(id) || []) stack.push(m);
    }
    return seen;
  }
  const panel = document.getElementById("graph-panel");
  function showPanel(n, upstream, downstream) {
    const dl = panel.querySelector("dl");
    const actions = panel.querySelector(".graph-panel-actions");
    panel.querySelector(".graph-panel-empty").hidden = !!n;
    dl.hidden = actions.hidden = !n;
    dl.replaceChildren();
    if (!n) return;
    const rows = n.hidden
      ? [["Story", n.label], ["", "in a project you cannot see"]]
      : [["Story", n.label], ["Title", n.title], ["Status", n.status], ["State", stateLabel[n.state]],
         ["Epic", n.epic_name || "—"], ["Backlog", n.backlog_name || "—"]];
    rows.push(["Waits for", upstream.size + " stor" + (upstream.size === 1 ? "y" : "ies")]);
    rows.push(["Waited for by", downstream.size + " stor" + (downstream.size === 1 ? "y" : "ies")]);
    if (n.critical) rows.push(["", "On the critical path"]);
    for (const [k, v] of rows) {
      dl.appendChild(Object.assign(document.createElement("dt"), { textContent: k }));
      dl.appendChild(Object.assign(document.createElement("dd"), { textContent: v }));
    }
    const open = document.getElementById("graph-open");
    open.hidden = !n.url;
    if (n.url) open.href = n.url;
  }
  function select(id) {
    selected = id;
    const upstream = id ? walk(id, up) : new Set();
    const downstream = id ? walk(id, down) : new Set();
    for (const [nid, g] of nodeEl) {
      g.classList.toggle("selected", nid === id);
      g.classList.toggle("upstream", upstream.has(nid));
      g.classList.toggle("downstream", downstream.has(nid));
      g.classList.toggle("faded", !!id && nid !== id && !upstream.has(nid) && !downstream.has(nid));
    }
    for (const e of edgeEls) {
      const isUp = !!id && (e.to === id || upstream.has(e.to)) && (upstream.has(e.from));
      const isDown = !!id && (e.from === id || downstream.has(e.from)) && downstream.has(e.to);
      e.el.classList.toggle("upstream", isUp);
      e.el.classList.toggle("downstream", isDown);
      e.el.classList.toggle("faded", !!id && !isUp && !isDown);
    }
    svg.dataset.selected = id ? byId.get(id).label : "";
    showPanel(id ? byId.get(id) : null, upstream, downstream);
  }
  nodeLayer.addEventListener("click", (ev) => {
    const g = ev.target.closest(".node");
    if (g) select(g.dataset.id === selected ? null : g.dataset.id);
  });
  nodeLayer.addEventListener("dblclick", (ev) => {
    const g = ev.target.closest(".node");
    const n = g && byId.get(g.dataset.id);
    if (n && n.url) window.location.href = n.url;
  });
  nodeLayer.addEventListener("keydown", (ev) => {
    const g = ev.target.closest(".node");
    if (!g) return;
    if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(g.dataset.id); }
  });
  document.addEventListener("keydown", (ev) => { if (ev.key === "Escape") select(null); });
  document.getElementById("graph-clear").addEventListener("click", () => select(null));

  // ------------------------------------------------------------------ search and filters
  const search = document.getElementById("graph-search");
  const searchCount = document.getElementById("graph-search-count");
  function matches() {
    const q = search.value.trim().toLowerCase();
    if (!q) return [];
    return data.nodes.filter((n) => !n.hidden && !nodeEl.get(n.id).classList.contains("filtered") &&
      (n.label.toLowerCase().includes(q) || n.title.toLowerCase().includes(q)));
  }
  function runSearch() {
    const found = new Set(matches().map((n) => n.id));
    for (const [id, g] of nodeEl) g.classList.toggle("match", found.has(id));
    searchCount.textContent = search.value.trim() ? found.size + " found" : "";
    return found;
  }
  search.addEventListener("input", runSearch);
  search.addEventListener("keydown", (ev) => {
    if (ev.key !== "Enter") return;
    ev.preventDefault();
    const first = matches()[0];
    if (first) { select(first.id); centreOn(first); }
  });
  const filters = [...document.querySelectorAll(".graph-toolbar select[data-filter]")];
  function applyFilters() {
    const want = filters.map((s) => [s.dataset.filter, s.value]).filter(([, v]) => v);
    const shown = new Set();
    for (const n of data.nodes) {
      if (!n.external && want.every(([f, v]) => n[f] === v)) shown.add(n.id);
    }
    if (want.length) {
      // Other projects' stories stay when linked to a story that is shown.
      for (const e of data.edges) {
        if (shown.has(e.from) && byId.get(e.to).external) shown.add(e.to);
        if (shown.has(e.to) && byId.get(e.from).external) shown.add(e.from);
      }
    }
    for (const [id, g] of nodeEl) g.classList.toggle("filtered", want.length > 0 && !shown.has(id));
    for (const e of edgeEls) e.el.classList.toggle("filtered", want.length > 0 && !(shown.has(e.from) && shown.has(e.to)));
    svg.dataset.shown = want.length ? shown.size : data.nodes.length;
    runSearch();
  }
  filters.forEach((s) => s.addEventListener("change", applyFilters));
  document.querySelector(".graph-toolbar").addEventListener("submit", (ev) => ev.preventDefault());

  draw();
  fit();
  const focus = new URLSearchParams(window.location.search).get("focus");
  const focused = focus && data.nodes.find((n) => n.label === focus);
  if (focused) { select(focused.id); centreOn(focused); }
  svg.dataset.drawnAt = String(Math.round(performance.now()));
  svg.dataset.ready = "true";
})();
