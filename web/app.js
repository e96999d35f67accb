/* The LightSpeed dashboard. Every value comes from the controller's REST API
 * (api/openapi.yaml) on this page's own origin and from its event stream (GET /events):
 * samples feed the charts, the rest is polled once a second. Nothing is loaded from
 * anywhere else. */
"use strict";

const WINDOW_S = 300;          /* the charts show the last five minutes */
const POLL_MS = 1000;
const MAX_SAMPLES = 200000;    /* the export keeps this session's samples, bounded */
const COLORS = ["#58a6ff", "#f0883e", "#a371f7", "#3fb950", "#db61a2", "#d29922",
  "#79c0ff", "#ff7b72"];

const state = {
  routes: null, status: null, stats: null, proxies: [], history: [],
  samples: [],                 /* {t, name, rtt_ms, jitter_ms, loss_up, loss_down} */
  names: [],                   /* node order for colours and chart series */
  charts: {}, chartKey: "", dirty: false,
};

const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function ms(v) { return typeof v === "number" ? v.toFixed(1) + " ms" : "-"; }
function pct(v) { return typeof v === "number" ? (100 * v).toFixed(1) + "%" : "-"; }
function clock(d) { return d.toLocaleTimeString([], { hour12: false }); }

/* ---- errors: shown, never swallowed ---- */

function showError(msg) {
  const p = el("p");
  p.appendChild(el("span", clock(new Date()) + "  " + msg));
  const b = el("button", "dismiss");
  b.type = "button";
  b.addEventListener("click", () => p.remove());
  p.appendChild(b);
  $("errors").appendChild(p);
  while ($("errors").children.length > 5) $("errors").firstChild.remove();
}

/* One call of the API; an error answer throws its message and code. */
async function api(method, path, body) {
  const opt = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    opt.headers["Content-Type"] = "application/json";
    opt.body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(path, opt);
  } catch (e) {
    throw new Error(method + " " + path + ": the controller does not answer (" + e.message + ")");
  }
  const text = await r.text();
  let j = null;
  try { j = text ? JSON.parse(text) : null; } catch (e) { j = null; }
  if (!r.ok) {
    const err = j && j.error;
    throw new Error(method + " " + path + ": " + (err ? err.message + " (" + err.code + ")"
      : "HTTP " + r.status));
  }
  if (j === null) throw new Error(method + " " + path + ": the answer is not JSON");
  return j;
}

/* ---- rendering ---- */

function route0() {
  return state.routes && state.routes.routes && state.routes.routes[0] || null;
}

function colorOf(name) {
  let i = state.names.indexOf(name);
  if (i < 0) { state.names.push(name); i = state.names.length - 1; }
  return COLORS[i % COLORS.length];
}

function renderRoute() {
  const r = route0();
  const st = state.status;
  $("game-server").textContent = r && r.game_server || (st && st.game_server) || "-";
  $("active-node").textContent = r && r.active || "none";
  $("backup-node").textContent = r && r.backup || "none";
  if (r) {
    const w = r.why;
    let why = w.strategy + ": " + w.reason;
    if (typeof w.score === "number") why += ", score " + w.score.toFixed(1);
    why += " (a challenger must beat x" + w.margin.ratio + " + " + w.margin.plus_ms +
      " ms for " + w.margin.window_s + " s)";
    if (w.challenger) why += "; challenger " + w.challenger.name + " for " +
      w.challenger.since_s.toFixed(1) + " s";
    if (w.fallback) why += "; " + w.fallback;
    $("why").textContent = why;
    const d = r.direct;
    if (typeof d.gain_ms === "number") {
      $("improvement").textContent = (d.gain_ms >= 0 ? "faster by " : "slower by ") +
        Math.abs(d.gain_ms).toFixed(1) + " ms (" + Math.abs(d.gain_pct).toFixed(0) +
        "%) than direct (" + ms(d.rtt_ms) + ")";
    } else {
      $("improvement").textContent = "direct path " + (d.state === "unavailable" ?
        "not measurable (no ICMP permission or no answer)" : "not measured yet");
    }
    $("direct-route").textContent = !d.route ? "not a candidate ([direct] route = false)" :
      (d.in_use ? "in use" : "not in use") + (d.why ? ": " + d.why : "") +
      (d.waiting_for_quiet ? "; switching waits for a quiet moment (a new address at the " +
        "game server)" : "");
    const act = r.candidates.find((c) => c.active);
    const pred = act && act.prediction;
    $("predicted").textContent = pred && typeof pred.p95_ms === "number" ?
      pred.p95_ms.toFixed(1) + " ms" + (typeof pred.low_ms === "number" ?
        " (" + pred.low_ms.toFixed(1) + "-" + pred.high_ms.toFixed(1) + ")" : "") :
      (w.strategy === "ml" ? "-" : "(nearest: no prediction)");
    if (pred && Array.isArray(pred.top_features) && pred.top_features.length) {
      $("predicted").textContent += "; weighed most: " + pred.top_features.map((f) =>
        f.feature + (typeof f.ms === "number" ? " " + (f.ms >= 0 ? "+" : "") + f.ms.toFixed(1) + " ms" : "")).join(", ");
    }
  }
  const strat = state.routes ? state.routes.strategy : "-";
  $("strategy-now").textContent = "strategy " + strat;
  if (document.activeElement !== $("strategy")) $("strategy").value = strat;
  const dp = state.routes ? state.routes.dataplane : false;
  $("dataplane").textContent = dp ? "dataplane connected" : "dataplane not connected";
  $("dataplane").className = "badge " + (dp ? "ok" : "bad");

  /* The failover target list follows the nodes (keeping the user's choice). */
  const sel = $("failover-to");
  const want = ["", ...state.proxies.map((n) => n.name)];
  const have = [...sel.options].map((o) => o.value);
  if (want.join("\n") !== have.join("\n")) {
    const keep = sel.value;
    while (sel.options.length > 1) sel.remove(1);
    for (const n of state.proxies) sel.appendChild(new Option(n.name, n.name));
    sel.value = want.includes(keep) ? keep : "";
  }
}

function renderNodes() {
  const tb = $("nodes").tBodies[0];
  const cands = {};
  const r = route0();
  if (r) for (const c of r.candidates) cands[c.name] = c;
  const rows = [];
  for (const n of state.proxies) {
    const c = cands[n.name] || n;
    const tr = el("tr");
    tr.dataset.node = n.name;
    if (n.active) tr.className = "active";
    const cell = (text, field) => {
      const td = el("td", text);
      td.dataset.field = field;
      tr.appendChild(td);
      return td;
    };
    const name = cell(n.name, "name");
    name.style.color = colorOf(n.name);
    cell("", "state").appendChild(el("span", n.state, "badge " + n.state));
    cell(n.active ? "active" : n.backup ? "backup" : "standby", "role");
    cell(n.region || "-", "region");
    cell(n.source, "source");
    cell(ms(n.rtt_p50_ms), "rtt_p50");
    cell(ms(n.rtt_p95_ms), "rtt_p95");
    cell(ms(n.server_leg_ms), "server_leg");
    cell(ms(n.jitter_ms), "jitter");
    cell(pct(n.loss_up), "loss_up");
    cell(pct(n.loss_down), "loss_down");
    const sc = cell(typeof c.score === "number" ? c.score.toFixed(1) : "-", "score");
    if (c.explain) sc.title = c.explain;
    rows.push(tr);
  }
  tb.replaceChildren(...rows);
}

function fecDir(d) {
  if (!d) return "-";
  if (!d.m) return "off";
  return d.k + " data + " + d.m + " parity, " + d.block_ms + " ms blocks";
}

function renderFec() {
  const f = state.stats && state.stats.fec;
  if (!f) return;
  $("fec-setting").textContent = f.setting;
  $("fec-up").textContent = fecDir(f.up);
  $("fec-down").textContent = f.down === undefined ? "as the PC asks (" + f.setting + ")" : fecDir(f.down);
  $("fec-rebuilt").textContent = f.rebuilt + " packets";
  $("fec-lost").textContent = f.lost_blocks + " blocks";
}

function renderHistory() {
  const rows = state.history.map((s) => {
    const tr = el("tr");
    for (const v of [new Date(s.time).toLocaleString(), s.from || "none", s.to, s.reason,
      ms(s.gap_ms), s.detail]) tr.appendChild(el("td", v));
    return tr;
  });
  $("history").tBodies[0].replaceChildren(...rows);
}

/* The game the controller found running, and what its profile says. */
function renderGame() {
  const g = state.status && state.status.game;
  const p = g && g.profile;
  $("game-name").textContent = g ? g.name + " (" + g.id + ")" : "none detected";
  $("game-process").textContent = g ? "pid " + g.pid + ", uid " + g.uid + ", since " +
    clock(new Date(g.since)) : "-";
  $("game-anticheat").textContent = g ? g.anti_cheat || "none named" : "-";
  $("game-ports").textContent = g ? g.ports.join(", ") : "-";
  $("game-relay").textContent = g ? g.relay || "none: it talks to its servers directly" : "-";
  $("game-profile").textContent = p ? "FEC " + (p.fec || "not set") + ", keepalive " +
    (p.keepalive_ms ? p.keepalive_ms + " ms" : "not set") : "-";
  $("game-traffic").textContent = p && p.pps ? "about " + p.pps + " packets/s each way" +
    (p.size_min ? ", " + p.size_min + "-" + p.size_max + " bytes" : "") : p ? "not given" : "-";
  $("game-file").textContent = p ? p.file : "-";
  $("game-file").title = p && p.notes || "";
}

/* WARP as the controller sees it; the with/without comparison when one has run. */
function renderWarp() {
  const w = state.status && state.status.warp;
  if (!w) return;
  const on = w.installed;
  $("warp-form").hidden = !on;
  if (!on) {
    $("warp-status").textContent = "not installed (no warp-cli found)";
    for (const id of ["warp-interface", "warp-nodes", "warp-routes", "warp-toggle", "warp-last"])
      $(id).textContent = "-";
    $("warp-compare-wrap").hidden = true;
    return;
  }
  $("warp-status").textContent = (w.status || "unknown") + (w.detail ? " (" + w.detail + ")" : "");
  const i = w.interface;
  $("warp-interface").textContent = i.name + (i.present ? (i.up ? " up" : " down") +
    (i.address ? ", " + i.address : "") : " absent");
  $("warp-nodes").textContent = w.nodes_via_warp.length ? w.nodes_via_warp.join(", ") : "none";
  $("warp-routes").textContent = w.routes.length ? w.routes.join(", ") : "none";
  $("warp-toggle").textContent = w.allow_toggle ?
    "allowed ([warp] allow_toggle): the controller compares with and without WARP" :
    "never by the controller itself; only when you ask below";
  const cmp = w.comparison;
  const last = cmp.last;
  $("warp-last").textContent = cmp.state !== "idle" ? cmp.state + "..." : last ?
    new Date(last.time).toLocaleString() + ": kept " + last.kept + " (was " + last.before +
    "): " + last.reason : "none yet";
  $("warp-compare-wrap").hidden = !last;
  if (last) {
    $("warp-compare").tBodies[0].replaceChildren(...last.nodes.map((n) => {
      const tr = el("tr");
      tr.dataset.node = n.name;
      tr.appendChild(el("td", n.name));
      for (const [v, f] of [[n.with_ms, "with"], [n.without_ms, "without"]]) {
        const td = el("td", ms(v));
        td.dataset.field = f;
        tr.appendChild(td);
      }
      return tr;
    }));
  }
  /* The controller refuses these too (409); the page says why before the click. */
  const why = cmp.state !== "idle" ? "a comparison is running" :
    state.status.game ? "not while a game is being played" :
    w.status !== "connected" && w.status !== "disconnected" ? "WARP is " + (w.status || "unknown") : "";
  $("warp-compare-btn").disabled = why !== "";
  $("warp-help").textContent = why || "toggles WARP with warp-cli, measures every node each way, keeps the faster";
}

function logLine(text) {
  const li = el("li");
  li.appendChild(el("span", clock(new Date()), "t"));
  li.appendChild(el("span", text));
  const log = $("log");
  log.insertBefore(li, log.firstChild);
  while (log.children.length > 300) log.lastChild.remove();
}

/* ---- charts (uPlot) ---- */

function chartWidth(id) {
  return Math.max(200, $(id).clientWidth || 300);
}

/* Columns for uPlot: one shared time axis; a node's value where it has a sample. */
function chartData(field, names, extra) {
  const now = Date.now() / 1000;
  const from = now - WINDOW_S;
  const xs = [];
  const cols = names.map(() => []);
  const extraCol = extra ? [] : null;
  for (const s of state.samples) {
    if (s.t < from) continue;
    const i = names.indexOf(s.name);
    if (i < 0) continue;
    xs.push(s.t);
    names.forEach((_, j) => cols[j].push(j === i ? field(s) : null));
    if (extraCol) extraCol.push(extra());
  }
  const data = [xs, ...cols];
  if (extraCol) data.push(extraCol);
  return data;
}

function makeChart(id, series, height) {
  const opts = {
    width: chartWidth(id), height,
    scales: { x: { time: true } },
    axes: [{ stroke: "#8b97a6", grid: { stroke: "#2a3541" } },
      { stroke: "#8b97a6", grid: { stroke: "#2a3541" } }],
    series: [{}, ...series],
    legend: { live: false },
  };
  $(id).replaceChildren();
  return new uPlot(opts, [[], ...series.map(() => [])], $(id));
}

function buildCharts() {
  const names = state.proxies.map((n) => n.name);
  const active = route0() && route0().active;
  const key = names.join(",") + "|" + active;
  if (key === state.chartKey && state.charts.rtt) return;
  state.chartKey = key;
  for (const c of Object.values(state.charts)) c.destroy();
  const line = (n, extra) => Object.assign({ label: n, stroke: colorOf(n),
    width: n === active ? 3.5 : 1.25, spanGaps: true, points: { show: false } }, extra || {});
  state.charts.rtt = makeChart("chart-rtt", [...names.map((n) => line(n)),
    { label: "direct", stroke: "#e6e9ee", dash: [6, 4], width: 1.5, spanGaps: true,
      points: { show: false } }], 240);
  state.charts.jitter = makeChart("chart-jitter", names.map((n) => line(n)), 150);
  state.charts.loss = makeChart("chart-loss", names.flatMap((n) => [
    line(n, { label: n + " up" }), line(n, { label: n + " down", dash: [4, 3] })]), 150);
  state.dirty = true;
}

function drawCharts() {
  if (!state.dirty || !state.charts.rtt) return;
  state.dirty = false;
  const names = state.proxies.map((n) => n.name);
  const r = route0();
  const direct = r && typeof r.direct.rtt_ms === "number" ? r.direct.rtt_ms : null;
  state.charts.rtt.setData(chartData((s) => s.rtt_ms, names, () => direct));
  state.charts.jitter.setData(chartData((s) => s.jitter_ms, names));
  /* Loss: two columns per node (up, down). */
  const now = Date.now() / 1000;
  const xs = [];
  const cols = names.flatMap(() => [[], []]);
  for (const s of state.samples) {
    if (s.t < now - WINDOW_S) continue;
    const i = names.indexOf(s.name);
    if (i < 0) continue;
    xs.push(s.t);
    cols.forEach((c, j) => c.push(j === 2 * i ? pctv(s.loss_up) : j === 2 * i + 1 ?
      pctv(s.loss_down) : null));
  }
  state.charts.loss.setData([xs, ...cols]);
  $("sample-count").textContent = state.samples.length + " samples this session";
}

function pctv(v) { return typeof v === "number" ? 100 * v : null; }

function resizeCharts() {
  for (const [k, c] of Object.entries(state.charts)) {
    const id = k === "rtt" ? "chart-rtt" : "chart-" + k;
    c.setSize({ width: chartWidth(id), height: c.height });
  }
}

/* ---- data ---- */

async function poll() {
  const calls = [["routes", "routes"], ["status", "status"], ["stats", "stats"],
    ["proxies", "proxies"], ["history", "failovers"]];
  const got = await Promise.allSettled(calls.map(([, p]) => api("GET", p)));
  got.forEach((g, i) => {
    const k = calls[i][0];
    if (g.status === "rejected") {
      if (!state.pollFailed) showError(g.reason.message);
      state.pollFailed = true;
      return;
    }
    if (k === "proxies") state.proxies = g.value.proxies;
    else if (k === "history") state.history = g.value.failovers;
    else state[k] = g.value;
  });
  if (got.every((g) => g.status === "fulfilled")) state.pollFailed = false;
  renderRoute();
  renderNodes();
  renderFec();
  renderHistory();
  renderGame();
  renderWarp();
  buildCharts();
}

function onEvent(name, handler) {
  state.es.addEventListener(name, (ev) => {
    let d;
    try { d = JSON.parse(ev.data); } catch (e) {
      showError("event " + name + ": not JSON");
      return;
    }
    handler(d);
  });
}

function connect() {
  const es = new EventSource("events");
  state.es = es;
  es.onopen = () => { $("conn").textContent = "live"; $("conn").className = "badge ok"; };
  es.onerror = () => { $("conn").textContent = "reconnecting"; $("conn").className = "badge bad"; };
  onEvent("snapshot", (d) => { state.routes = d; renderRoute(); });
  onEvent("sample", (d) => {
    state.samples.push({ t: Date.now() / 1000, name: d.name, rtt_ms: d.rtt_ms,
      jitter_ms: d.jitter_ms, loss_up: d.loss_up, loss_down: d.loss_down });
    if (state.samples.length > MAX_SAMPLES) state.samples.splice(0, state.samples.length - MAX_SAMPLES);
    state.dirty = true;
  });
  onEvent("state", (d) => logLine(d.name + ": " + d.previous + " -> " + d.state + " (" + d.reason + ")"));
  onEvent("switch", (d) => {
    logLine("switch " + (d.from || "none") + " -> " + d.to + " (" + d.reason + "): " + d.detail);
    poll();
  });
  onEvent("gap", (d) => logLine("to " + d.to + ": " + d.gap_ms.toFixed(1) + " ms without game packets"));
  onEvent("backup", (d) => logLine("backup armed: " + (d.name || "none")));
  onEvent("decision", (d) => logLine(d.kind + (d.node ? " " + d.node : "") + ": " + d.detail));
  onEvent("node", (d) => { logLine("node " + d.name + " " + d.change); poll(); });
  onEvent("dataplane", (d) => logLine("dataplane " + (d.connected ? "connected" : "disconnected")));
  onEvent("dropped", (d) => logLine(d.count + " events lost (this page was too slow); refreshed"));
  onEvent("game", (d) => {
    logLine(d.game ? "game: " + d.game.name + " is on (process " + d.game.pid + ")" : "game: none running");
    if (state.status) { state.status.game = d.game; renderGame(); renderWarp(); }
  });
  onEvent("warp", (d) => {
    const last = d.warp.comparison.last;
    if (last) logLine("WARP compared: kept " + last.kept + " (" + last.reason + ")");
    if (state.status) { state.status.warp = d.warp; renderWarp(); }
  });
}

/* ---- controls ---- */

function download(name, type, text) {
  const a = el("a");
  a.href = URL.createObjectURL(new Blob([text], { type }));
  a.download = name;
  document.body.appendChild(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

function exportCsv() {
  const f = (v) => (v === null || v === undefined ? "" : String(v));
  const lines = ["time_unix_s,node,rtt_ms,jitter_ms,loss_up,loss_down"];
  for (const s of state.samples) {
    lines.push([s.t.toFixed(3), s.name, f(s.rtt_ms), f(s.jitter_ms), f(s.loss_up),
      f(s.loss_down)].join(","));
  }
  download("lightspeed-samples.csv", "text/csv", lines.join("\n") + "\n");
}

function exportJson() {
  download("lightspeed-samples.json", "application/json",
    JSON.stringify({ samples: state.samples }, null, 1));
}

function bind() {
  $("failover-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const to = $("failover-to").value;
    $("failover-result").textContent = "switching...";
    try {
      const s = await api("POST", "failover", to ? { to } : {});
      $("failover-result").textContent = "switched " + (s.from || "none") + " -> " + s.to;
    } catch (e) {
      $("failover-result").textContent = "";
      showError(e.message);
    }
    poll();
  });
  $("strategy-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api("POST", "route/strategy", { strategy: $("strategy").value });
    } catch (e) { showError(e.message); }
    poll();
  });
  $("fec-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api("POST", "fec", { fec: $("fec").value.trim() });
    } catch (e) { showError(e.message); }
    setTimeout(poll, 1200);
  });
  $("warp-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const r = await api("POST", "warp/compare");
      if (state.status) { state.status.warp = r.warp; renderWarp(); }
    } catch (e) { showError(e.message); }
    poll();
  });
  $("export-csv").addEventListener("click", exportCsv);
  $("export-json").addEventListener("click", exportJson);
  window.addEventListener("resize", resizeCharts);
}

bind();
connect();
poll();
setInterval(poll, POLL_MS);
setInterval(drawCharts, 500);
