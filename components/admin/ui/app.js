// The Upshift dashboard: one page over the admin API of its own origin.
// Traffic per version (from the differences between reads of /admin/stats,
// as `upshift top` takes them), rollouts with their analysis (as `upshift
// rollout status` shows them), config versions and their diffs, and AI
// usage. No build step and no dependency: it works offline.
"use strict";

const POLL_MS = 2000;
const WINDOW_MS = 5 * 60 * 1000; // what the charts show
const SMOOTH_MS = 10 * 1000; // what each figure is taken over
const TOKEN_KEY = "upshift.admin.token";
const VIEWS = ["traffic", "rollouts", "config", "ai"];
const LATENCY_BOUNDS_MS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];
const SLOW = Number.POSITIVE_INFINITY; // a latency above the last bound
const NO_QUANTILE = 4294967295; // how the admin API writes SLOW (u32::MAX)
const PALETTE = ["#2563eb", "#d97706", "#0f766e", "#7c3aed", "#db2777", "#475569"];
const REFUSED = "The admin API refused the token (401): sign in again.";

const state = {
  token: sessionStorage.getItem(TOKEN_KEY) || "",
  view: "traffic",
  timer: 0,
  poll: 0, // the latest poll's number: an older poll's answers are dropped
  reads: [], // recent reads of the counters, {t, counters: Map}, oldest first
  history: [], // figures of the last WINDOW_MS: {t, v: {key: figures}}
  services: [],
  routes: [],
  configVersion: null,
  rollouts: [], // answers of GET /admin/rollouts/{service} (or just `rollout`)
  messages: {}, // service -> the outcome of the last action: {ok, text, at}
  busy: {}, // service -> true while an action is on its way
  confirm: "", // the action waiting for confirmation: "abort:orders", "activate:7"
  versions: null,
  diff: { from: null, to: null, result: null, error: "" },
  configMessage: null,
  audit: [],
  usage: null,
  errors: {}, // view -> why some of its data could not be read
  updated: 0,
  offline: "",
};

// ---------------------------------------------------------------- helpers

const $ = (selector, root = document) => root.querySelector(selector);

function esc(value) {
  const entities = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
  return String(value ?? "").replace(/[&<>"']/g, (c) => entities[c]);
}

/** A `data-testid` attribute, its parts joined by `-`. */
const tid = (...parts) => ` data-testid="${esc(parts.join("-"))}"`;

const rendered = new WeakMap();

/** Sets `el`'s markup unless it is the same as last time (which keeps
 * focus, open menus and half-done clicks across polls); whether it did. */
function patch(el, html) {
  if (!el || rendered.get(el) === html) return false;
  el.innerHTML = html;
  rendered.set(el, html);
  return true;
}

const number = (n) => (n == null ? "–" : Number(n).toLocaleString("en-US"));
const percent = (r, digits = 1) => (r == null ? "–" : `${(r * 100).toFixed(digits)}%`);
const usd = (n) => (n == null ? "–" : `$${n < 1 ? n.toFixed(4) : n.toFixed(2)}`);
const times = (r) => `${Number(r).toFixed(2)}×`;
const plural = (n, word) => `${number(n)} ${word}${n === 1 ? "" : "s"}`;
const rate = (r) => (r == null ? "–" : r >= 100 ? number(Math.round(r)) : r.toFixed(1));

function latency(ms) {
  if (ms == null) return "–";
  if (ms === SLOW || ms >= NO_QUANTILE) return "> 10 s";
  return ms >= 1000 ? `≤ ${ms / 1000} s` : `≤ ${ms} ms`;
}

/** A duration in the unit that reads best: `3 s`, `2 min`, `5 h`, `2 d`. */
function span(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}

const ago = (ms) => (ms < 1000 ? "just now" : `${span(ms)} ago`);
const pad = (n) => String(n).padStart(2, "0");
const clock = (d) => `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;

/** Local date and time; the date is left out when it is today. */
function localTime(ms) {
  const d = new Date(ms);
  const date = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  return new Date().toDateString() === d.toDateString() ? clock(d) : `${date} ${clock(d)}`;
}

/** A time for people: local, and how long ago (filled in and kept fresh by
 * `tickClocks`, so that the markup only changes with the data). */
const when = (ms) =>
  `<time datetime="${new Date(ms).toISOString()}">${localTime(ms)}</time> <span class="ago" data-at="${ms}"></span>`;

/** `500ms`, `30s`, `2m`, `1h`, `90d` in milliseconds; null for `manual`. */
function duration(text) {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(text || "");
  return m ? Number(m[1]) * { ms: 1, s: 1e3, m: 6e4, h: 36e5, d: 864e5 }[m[2]] : null;
}

const empty = (text) => `<p class="empty">${esc(text)}</p>`;
const card = (title, body, attrs = "") => `<section class="card"${attrs}><h2>${title}</h2>${body}</section>`;
const cell = (html, cls = "") => `<td${cls ? ` class="${cls}"` : ""}>${html}</td>`;
const num = (html, cls = "") => cell(html, `num ${cls}`.trim());

function meter(fraction, color = "") {
  const style = `width:${((fraction || 0) * 100).toFixed(1)}%${color ? `;background:${color}` : ""}`;
  return `<span class="meter"><span style="${style}"></span></span>`;
}

/** A table: column titles (`[title, class]` for a styled column) and rows. */
function table(columns, rows, attrs = "") {
  const head = columns.map((c) => (Array.isArray(c) ? `<th class="${c[1]}">${c[0]}</th>` : `<th>${c}</th>`));
  return `<div class="table-wrap"><table${attrs}><thead><tr>${head.join("")}</tr></thead>
    <tbody>${rows.join("")}</tbody></table></div>`;
}

const tile = (label, value, attrs = "") =>
  `<div class="tile"${attrs}><span class="tile-label">${esc(label)}</span><span class="tile-value">${esc(value)}</span></div>`;

// ------------------------------------------------------------ admin API

class Unauthorized extends Error {}

async function api(path, options = {}) {
  const headers = { authorization: `Bearer ${state.token}` };
  if (options.body) headers["content-type"] = "application/json";
  const response = await fetch(path, { ...options, headers, cache: "no-store" });
  if (response.status === 401) throw new Unauthorized("the admin API refused the token");
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const error = new Error(body?.error?.message || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

/** Reads `path` for `view`: a refusal is shown in the view and does not
 * stop the rest of the poll. */
async function read(view, path) {
  try {
    const body = await api(path);
    delete state.errors[view];
    return body;
  } catch (e) {
    if (e instanceof Unauthorized || e instanceof TypeError) throw e;
    state.errors[view] = e.status === 404 ? `${path} is not served by this gateway (${e.message})` : e.message;
    return null;
  }
}

// ------------------------------------------------------- session, polling

function showLogin(message = "", tone = "error") {
  $("#app").hidden = true;
  $("#login").hidden = false;
  const note = $("[data-testid=login-error]");
  note.textContent = message;
  note.className = `login-error ${tone}`;
  note.hidden = !message;
  $("#login-token").focus();
}

function logout(message = "", tone = "error") {
  clearTimeout(state.timer);
  state.poll += 1;
  state.token = "";
  state.reads = [];
  state.history = [];
  sessionStorage.removeItem(TOKEN_KEY);
  showLogin(message, tone);
}

async function login(event) {
  event.preventDefault();
  const input = $("#login-token");
  state.token = input.value.trim();
  try {
    await api("/admin/stats");
  } catch (e) {
    state.token = "";
    const refused = e instanceof Unauthorized;
    showLogin(refused ? "That token was refused (401). Check it and try again."
      : `The admin API cannot be reached: ${e.message}`);
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, state.token);
  input.value = "";
  start();
}

function start() {
  $("#login").hidden = true;
  $("#app").hidden = false;
  showView();
  refresh();
}

/** Polls now, then every POLL_MS. */
function refresh() {
  clearTimeout(state.timer);
  tick();
}

async function tick() {
  const poll = ++state.poll;
  try {
    const view = { traffic: pollTraffic, rollouts: pollRollouts, config: pollConfig, ai: pollAi }[state.view];
    // The rollouts' states show in every view; the Rollouts view reads more.
    const list = state.view === "rollouts" ? null : api("/admin/rollouts");
    const [stats, rollouts] = await Promise.all([api("/admin/stats"), list, view()]);
    if (poll !== state.poll) return;
    ingest(stats, Date.now());
    if (rollouts) state.rollouts = mergeList(rollouts.rollouts);
    state.updated = Date.now();
    state.offline = "";
  } catch (e) {
    if (poll !== state.poll) return;
    if (e instanceof Unauthorized) return logout(REFUSED);
    state.offline = e.message;
  }
  render();
  state.timer = setTimeout(tick, POLL_MS);
}

/** The rollouts' states, each with the full status read before if it is
 * still of the same revision. */
function mergeList(states) {
  return states.map((rollout) => {
    const known = state.rollouts.find((r) => r.rollout.spec.service === rollout.spec.service);
    return known?.rollout.revision === rollout.revision ? known : { rollout };
  });
}

function showView() {
  const wanted = location.hash.slice(1);
  state.view = VIEWS.includes(wanted) ? wanted : "traffic";
  for (const view of VIEWS) $(`#view-${view}`).hidden = view !== state.view;
  for (const link of document.querySelectorAll(".tabs a")) {
    link.classList.toggle("active", link.dataset.view === state.view);
  }
}

function render() {
  const updated = $("#updated");
  updated.classList.toggle("offline", Boolean(state.offline));
  updated.textContent = state.updated ? `Updated ${clock(new Date(state.updated))}` : "connecting…";
  const banner = $("#banner");
  banner.hidden = !state.offline;
  banner.textContent = `The admin API cannot be reached (${state.offline}); retrying every ${POLL_MS / 1000} s.`;
  const active = state.rollouts.filter((r) => isActive(r.rollout)).length;
  $("#rollout-count").hidden = !active;
  $("#rollout-count").textContent = active;
  const error = state.errors[state.view];
  const notice = error ? `<p class="notice error">${esc(error)}</p>` : "";
  const views = { traffic: trafficView, rollouts: rolloutsView, config: configView, ai: aiView };
  views[state.view]($(`#view-${state.view}`), notice);
  tickClocks();
}

/** Refreshes the relative times and the countdowns (every second). */
function tickClocks() {
  const now = Date.now();
  for (const el of document.querySelectorAll("[data-at]")) {
    el.textContent = `(${ago(now - Number(el.dataset.at))})`;
  }
  for (const el of document.querySelectorAll("[data-ends]")) {
    const left = Number(el.dataset.ends) - now;
    el.textContent = left > 0 ? `${span(left + 999)} left` : "pause over: waiting for the analysis";
  }
}

// ---------------------------------------------------------------- traffic

async function pollTraffic() {
  const [services, routes] = await Promise.all([
    read("traffic", "/admin/services"),
    read("traffic", "/admin/routes"),
  ]);
  if (services) [state.services, state.configVersion] = [services.services, services.version];
  if (routes) state.routes = routes.routes;
}

/** Adds `counters` to those under `key`. */
function add(map, key, counters) {
  const sum = map.get(key) || {};
  for (const [field, n] of Object.entries(counters || {})) sum[field] = (sum[field] || 0) + n;
  map.set(key, sum);
}

/** The latency (a bucket's upper bound) under which a share `q` of the
 * counted attempts fell; null without any. */
function quantile(counts, q) {
  const buckets = [...LATENCY_BOUNDS_MS, SLOW].map((_, i) => counts[`latency_bucket_${i}`] || 0);
  const total = buckets.reduce((a, b) => a + b, 0);
  if (!total) return null;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    seen += buckets[i];
    if (seen >= rank) return LATENCY_BOUNDS_MS[i] ?? SLOW;
  }
  return SLOW;
}

/** Takes a read of /admin/stats: the figures of the last SMOOTH_MS (the
 * differences from the newest read at least that old), per service
 * version (key `service\tversion`) and route (`\troute`), join the history. */
function ingest(stats, now) {
  const counters = new Map();
  for (const s of stats.series || []) {
    add(counters, `${s.service}\t${s.version}`, s.counters);
    add(counters, `\t${s.route}`, s.counters);
  }
  state.reads.push({ t: now, counters });
  while (state.reads.length > 2 && state.reads[1].t <= now - SMOOTH_MS) state.reads.shift();
  const base = state.reads[0];
  if (base.t === now) return;
  const seconds = (now - base.t) / 1000;
  const point = { t: now, v: {} };
  const totals = {};
  for (const [key, after] of counters) {
    const before = base.counters.get(key) || {};
    const d = {};
    for (const field of Object.keys(after)) d[field] = Math.max(0, after[field] - (before[field] || 0));
    const requests = d.requests || 0;
    const errors = (d.status_5xx || 0) + (d.failures || 0) + (d.timeouts || 0);
    const errorRate = requests ? errors / requests : null;
    point.v[key] = { requests, rate: requests / seconds, errorRate, p99: quantile(d, 0.99) };
    const service = key.split("\t")[0];
    if (service) totals[service] = (totals[service] || 0) + requests;
  }
  for (const [key, figures] of Object.entries(point.v)) {
    const total = totals[key.split("\t")[0]];
    figures.share = total ? figures.requests / total : null;
  }
  state.history.push(point);
  while (state.history[0].t < now - WINDOW_MS) state.history.shift();
}

const latest = (key) => state.history.at(-1)?.v[key];

function niceCeil(v) {
  const magnitude = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((n) => n >= v);
}

/** A small time chart of `field` over the last WINDOW_MS: a polyline per
 * line (`{key, color}`), broken where there is no value. */
function chart(title, lines, { field, scale = 1, floor = 1, max = null, format }) {
  const [w, h] = [300, 64];
  const now = state.history.at(-1)?.t ?? Date.now();
  const value = (p, key) => (p.v[key]?.[field] == null ? null : p.v[key][field] * scale);
  const values = lines.flatMap((l) => state.history.map((p) => value(p, l.key)));
  const top = max ?? niceCeil(Math.max(floor, ...values.filter((v) => v != null && v !== SLOW)));
  const x = (t) => (((t - (now - WINDOW_MS)) / WINDOW_MS) * w).toFixed(1);
  const y = (v) => (h - 1 - (Math.min(v, top) / top) * (h - 2)).toFixed(1);
  const marks = lines.map(({ key, color }) => {
    const segments = [[]];
    for (const p of state.history) {
      const v = value(p, key);
      if (v == null) segments.push([]);
      else segments.at(-1).push([x(p.t), y(v)]);
    }
    return segments.filter((s) => s.length).map((s) => s.length === 1
      ? `<circle cx="${s[0][0]}" cy="${s[0][1]}" r="1.5" fill="${color}"/>`
      : `<polyline points="${s.map((xy) => xy.join(",")).join(" ")}" stroke="${color}"/>`).join("");
  });
  const grid = [0.25, 0.5, 0.75].map((f) => `<line x1="0" x2="${w}" y1="${h * f}" y2="${h * f}"/>`);
  return `<figure class="chart"><figcaption><span>${esc(title)}</span><span class="muted">max ${esc(format(top))}</span></figcaption>
    <svg viewBox="0 0 ${w} ${h}" preserveAspectRatio="none" role="img" aria-label="${esc(title)}, last 5 minutes">
    <g class="grid">${grid.join("")}</g><g class="lines">${marks.join("")}</g></svg>
    <div class="axis"><span>−5 min</span><span>now</span></div></figure>`;
}

const CHARTS = [
  ["Traffic share", { field: "share", scale: 100, max: 100, format: (v) => `${v}%` }],
  ["Requests/s", { field: "rate", format: rate }],
  ["Error rate", { field: "errorRate", scale: 100, format: (v) => `${v}%` }],
  ["p99 latency", { field: "p99", floor: 10, format: (v) => `${v} ms` }],
];

/** Every service with its versions: those configured, and any the
 * counters still know of. */
function serviceList() {
  const list = state.services.map((s) => ({ name: s.name, versions: s.versions.map((v) => ({ ...v })) }));
  for (const key of state.reads.at(-1)?.counters.keys() ?? []) {
    const [service, version] = key.split("\t");
    if (!service) continue;
    let entry = list.find((s) => s.name === service);
    if (!entry) list.push((entry = { name: service, versions: [] }));
    if (!entry.versions.some((v) => v.name === version)) entry.versions.push({ name: version, gone: true });
  }
  return list;
}

function trafficView(el, notice) {
  const services = serviceList();
  const routes = Object.entries(state.history.at(-1)?.v ?? {}).filter(([key]) => key.startsWith("\t"));
  const sum = (f) => routes.reduce((total, [, v]) => total + f(v), 0);
  const requests = sum((v) => v.requests);
  const errorRate = requests ? sum((v) => (v.errorRate ?? 0) * v.requests) / requests : null;
  const tiles = [
    tile("Requests/s", state.history.length ? rate(sum((v) => v.rate)) : "–", tid("traffic-rate")),
    tile("Error rate", percent(errorRate), tid("traffic-errors")),
    tile("Services", services.length),
    tile("Routes", state.routes.length),
    tile("Config version", state.configVersion ?? "–"),
  ];
  const cards = services.map(serviceCard).join("") || card("Services", empty("No config has been applied yet."));
  patch(el, `${notice}<div class="tiles">${tiles.join("")}</div>${cards}${routesCard()}`);
}

function serviceCard(service) {
  const rollout = state.rollouts.map((r) => r.rollout).find((r) => r.spec.service === service.name && isActive(r));
  const lines = service.versions.map((v, i) =>
    ({ ...v, key: `${service.name}\t${v.name}`, color: PALETTE[i % PALETTE.length] }));
  const weight = (v) => {
    const set = (w) => `${w}% <span class="muted small by-rollout" title="set by the rollout">rollout</span>`;
    if (rollout && v.name === rollout.spec.canary) return set(canaryWeight(rollout));
    if (rollout && v.name === rollout.spec.stable) return set(100 - canaryWeight(rollout));
    return v.weight == null ? "–" : `${v.weight}%`;
  };
  const rows = lines.map((v) => {
    const f = latest(v.key);
    const id = (what) => tid(what, service.name, v.name);
    const name = `<span class="swatch" style="background:${v.color}"></span>${esc(v.name)}`;
    return `<tr${id("version")}>${cell(name + (v.gone ? ' <span class="muted">(not in config)</span>' : ""))}
      ${cell(weight(v), "nowrap")}<td class="share"${id("version-share")}>${meter(f?.share, v.color)}${percent(f?.share, 0)}</td>
      <td class="num"${id("version-rate")}>${rate(f?.rate)}</td>
      <td class="num${f?.errorRate > 0 ? " bad" : ""}"${id("version-errors")}>${percent(f?.errorRate)}</td>
      <td class="num"${id("version-p99")}>${latency(f?.p99)}</td></tr>`;
  });
  const columns = ["Version", "Weight", ["Live share", "share"], ["Req/s", "num"], ["Errors", "num"], ["p99", "num"]];
  const charts = CHARTS.map(([title, options]) => chart(title, lines, options)).join("");
  const where = rollout && `step ${rollout.step + 1} of ${rollout.spec.steps.length}`;
  const badge = rollout ? `<a class="pill ${rollout.phase}" href="#rollouts">rollout ${rollout.phase} · ${where}</a>` : "";
  const body = `${table(columns, rows)}<div class="charts">${charts}</div>`;
  return card(`${esc(service.name)} ${badge}`, body, tid("service", service.name));
}

function routesCard() {
  if (!state.routes.length) return "";
  const matches = (r) => [...(r.hosts || []), ...(r.methods || []), ...(r.paths || [])].join(" ") || "everything";
  const rows = state.routes.map((r) => {
    const f = latest(`\t${r.name}`);
    const target = `${esc(r.service ?? r.kind ?? "–")}${r.version ? `@${esc(r.version)}` : ""}`;
    return `<tr${tid("route", r.name)}>${cell(esc(r.name))}${cell(esc(matches(r)), "mono")}${cell(target)}
      ${num(rate(f?.rate))}${num(percent(f?.errorRate), f?.errorRate > 0 ? "bad" : "")}${num(latency(f?.p99))}</tr>`;
  });
  const columns = ["Route", "Matches", "Service", ["Req/s", "num"], ["Errors", "num"], ["p99", "num"]];
  return card("Routes", table(columns, rows));
}

// --------------------------------------------------------------- rollouts

async function pollRollouts() {
  const list = await read("rollouts", "/admin/rollouts");
  if (!list) return;
  const paths = list.rollouts.map((r) => `/admin/rollouts/${encodeURIComponent(r.spec.service)}`);
  const statuses = await Promise.all(paths.map((path) => read("rollouts", path)));
  state.rollouts = statuses.filter(Boolean).sort((a, b) =>
    isActive(b.rollout) - isActive(a.rollout) || b.rollout.updated_ms - a.rollout.updated_ms);
}

const isActive = (rollout) => ["progressing", "paused"].includes(rollout.phase);
const phaseName = (phase) => phase.replace("_", " ");

/** The canary's share of traffic, in percent, as the splitter takes it. */
function canaryWeight(rollout) {
  if (rollout.phase === "promoted") return 100;
  if (!isActive(rollout) || rollout.awaiting === "pre_rollout") return 0;
  return Math.min(100, (rollout.spec.steps[rollout.step] ?? rollout.spec.steps.at(-1))?.weight ?? 0);
}

function rolloutsView(el, notice) {
  if (!state.rollouts.length) {
    return patch(el, notice + card("Rollouts", empty("No rollout has been started (upshift rollout start).")));
  }
  const parts = ["head", "steps", "actions", "analysis", "history"];
  const skeleton = state.rollouts.map((r) => `<section class="card rollout"${tid("rollout", r.rollout.spec.service)}>
    ${parts.map((part) => `<div data-part="${part}"></div>`).join("")}</section>`);
  patch(el, `<div data-part="notice"></div>${skeleton.join("")}`);
  patch($('[data-part="notice"]', el), notice);
  const cards = el.querySelectorAll(".rollout");
  state.rollouts.forEach((status, i) => {
    const html = [rolloutHead, rolloutSteps, rolloutActions, rolloutAnalysis, rolloutHistory].map((f) => f(status));
    parts.forEach((part, j) => {
      if (patch($(`[data-part="${part}"]`, cards[i]), html[j]) && part === "steps") showCurrentStep(cards[i]);
    });
  });
}

/** On a narrow screen, scrolls the steps so that the current one shows. */
function showCurrentStep(root) {
  const list = $(".steps", root);
  const current = $("[aria-current]", root);
  if (list && current && list.scrollWidth > list.clientWidth) {
    list.scrollLeft = current.offsetLeft - list.offsetLeft - list.clientWidth / 2;
  }
}

function rolloutHead({ rollout, weights }) {
  const { spec } = rollout;
  const canary = weights?.canary ?? canaryWeight(rollout);
  const share = (version, w) => (w > 0 ? `${esc(version)} ${w}%` : "");
  return `<header class="rollout-head">
      <h2>${esc(spec.service)} <span class="muted">${esc(spec.stable)} → ${esc(spec.canary)}</span></h2>
      <span class="pill ${esc(rollout.phase)}"${tid("rollout-phase")}>${esc(phaseName(rollout.phase))}</span>
      <span class="muted small">rollout ${esc(rollout.id)} · revision ${rollout.revision} · updated ${when(rollout.updated_ms)}</span>
    </header>
    <div class="split"${tid("rollout-weights")}>
      <span style="width:${100 - canary}%" class="stable">${share(spec.stable, 100 - canary)}</span>
      <span style="width:${canary}%" class="canary"${tid("rollout-weight")} data-weight="${canary}">${share(spec.canary, canary)}</span>
    </div>
    ${rollout.reason ? `<p class="reason"><span class="muted">Reason:</span> ${esc(rollout.reason)}</p>` : ""}`;
}

function rolloutSteps({ rollout }) {
  const { steps } = rollout.spec;
  const items = steps.map((s, i) => {
    const done = i < rollout.step || rollout.phase === "promoted";
    const status = done ? "done" : i === rollout.step ? "current" : "todo";
    const current = status === "current" ? ' aria-current="step"' : "";
    return `<li class="${status}"${current}><span class="dot">${i + 1}</span><span class="w">${s.weight}%</span>
      <span class="p">${esc(s.pause)}</span></li>`;
  });
  const step = steps[rollout.step];
  const progressing = rollout.phase === "progressing";
  let pause = "";
  if (rollout.awaiting && isActive(rollout)) pause = `waiting at the ${esc(rollout.awaiting)} gate for its webhooks`;
  else if (rollout.phase === "paused") pause = "held until resumed";
  else if (progressing && step?.pause === "manual") pause = "waits for Resume";
  else if (progressing && duration(step?.pause) != null) {
    pause = `<span data-ends="${rollout.step_started_ms + duration(step.pause)}"></span>`;
  }
  return `<div class="steps-head">
      <span${tid("rollout-step")} data-step="${rollout.step + 1}" data-weight="${step?.weight ?? 0}">
        Step ${rollout.step + 1} of ${steps.length}</span>
      <span class="muted">started ${when(rollout.step_started_ms)}</span>
      ${pause ? `<span class="pause"${tid("rollout-pause")}>${pause}</span>` : ""}
    </div><ol class="steps"${tid("rollout-steps")}>${items.join("")}</ol>`;
}

function rolloutActions({ rollout }) {
  const service = rollout.spec.service;
  const waiting = Boolean(rollout.awaiting) || rollout.spec.steps[rollout.step]?.pause === "manual";
  const can = {
    pause: rollout.phase === "progressing",
    resume: rollout.phase === "paused" || (rollout.phase === "progressing" && waiting),
    promote: isActive(rollout),
    abort: isActive(rollout),
  };
  const button = (action, label, cls = "", extra = "") => {
    const disabled = !can[action] || state.busy[service] ? " disabled" : "";
    return `<button type="button" class="${cls}" data-action="rollout" data-service="${esc(service)}"
      data-do="${action}"${extra}${disabled}>${label}</button>`;
  };
  const confirming = ["promote", "abort"].find((a) => state.confirm === `${a}:${service}`);
  let buttons = [
    button("pause", "Pause", "", tid("btn-pause")),
    button("resume", "Resume", "", tid("btn-resume")),
    button("promote", "Promote", "", tid("btn-promote")),
    button("abort", "Abort", "danger-outline", tid("btn-abort")),
  ].join("");
  if (confirming) {
    const [question, label] = confirming === "promote"
      ? [`Send all traffic to ${esc(rollout.spec.canary)} now?`, "Promote now"]
      : [`Send all traffic back to ${esc(rollout.spec.stable)}?`, "Abort rollout"];
    const kind = confirming === "abort" ? "danger" : "primary";
    buttons = `<span class="confirm">${question}${button(confirming, label, kind, ` data-confirmed="yes"${tid("btn-confirm")}`)}
      <button type="button" data-action="cancel"${tid("btn-cancel")}>Cancel</button></span>`;
  }
  const m = state.messages[service];
  const message = m && `<span class="message ${m.ok ? "ok" : "bad"}"${tid("rollout-message")}>
    ${esc(m.text)} · ${clock(new Date(m.at))}</span>`;
  return `<div class="actions">${buttons}${message || ""}</div>`;
}

/** The checks of a step's analysis, each against its limit, from the
 * step's counters of both sides; as the gateway judges them (whose own
 * verdict shows above them). */
function checks(a, { stable = {}, canary = {} }, weights) {
  // Without canary traffic only shadow copies are judged, and without
  // those nothing is waited for; comparisons need traffic on both sides.
  const shadows = a.max_shadow_mismatch_rate != null || a.max_shadow_diff_rate != null;
  const min = weights.canary === 0 && !shadows ? 0 : a.min_requests ?? 100;
  const [live, both] = [weights.canary > 0, weights.canary > 0 && weights.stable > 0];
  const ready = (s) => (s.requests ?? 0) >= min;
  const answered = (s) => (s.ai?.answers ?? 0) >= min;
  const ratio = (x, y) => (x == null || !y ? null : x / y);
  const within = (v, max) => v <= max + 1e-9;
  const atMost = (m) => `≤ ${percent(m)}`;
  const list = [
    { field: "max_error_rate", on: live, name: "Error rate", value: canary.error_rate, stable: stable.error_rate,
      show: percent, limit: atMost, pass: within },
    { field: "max_p99_ms", on: live, name: "p99 latency", value: canary.p99_ms, stable: stable.p99_ms,
      show: latency, limit: (m) => `≤ ${number(m)} ms`, pass: (v, m) => v <= m },
    { field: "max_error_rate_increase", on: both, name: "Error rate over stable", significance: true,
      value: canary.error_rate == null ? null : canary.error_rate - (stable.error_rate ?? 0),
      show: (v) => `${v >= 0 ? "+" : ""}${percent(v)}`, limit: (m) => `≤ +${percent(m)}`,
      enough: ready(canary) && ready(stable), pass: within },
    { field: "max_p99_ratio", on: both, name: "p99 / stable p99", value: ratio(canary.p99_ms, stable.p99_ms),
      show: times, limit: (m) => `≤ ${times(m)}`, enough: ready(canary) && ready(stable), pass: within },
    { field: "max_shadow_mismatch_rate", on: weights.stable > 0, name: "Shadow mismatches",
      value: ratio(canary.shadow_mismatches, canary.shadow_requests), show: percent, limit: atMost,
      enough: (canary.shadow_requests ?? 0) >= min, pass: within },
    { field: "max_shadow_diff_rate", on: weights.stable > 0, name: "Shadow answer diffs",
      value: ratio(canary.shadow_diffs, canary.shadow_compared), show: percent, limit: atMost,
      enough: (canary.shadow_compared ?? 0) >= min, pass: within },
    { field: "max_ttft_ms", on: live, name: "Time to first token", value: canary.ai?.mean_ttft_ms,
      show: (v) => `${Math.round(v)} ms`, limit: (m) => `≤ ${number(m)} ms`, enough: answered(canary), pass: within },
    { field: "max_ttft_ratio", on: both, name: "TTFT / stable TTFT",
      value: ratio(canary.ai?.mean_ttft_ms, stable.ai?.mean_ttft_ms), show: times, limit: (m) => `≤ ${times(m)}`,
      enough: answered(canary) && answered(stable), pass: within },
    { field: "min_tokens_per_second", on: live, name: "Output speed", value: canary.ai?.tokens_per_second,
      show: (v) => `${v.toFixed(1)} tokens/s`, limit: (m) => `≥ ${m} tokens/s`, enough: answered(canary),
      pass: (v, m) => v + 1e-9 >= m },
    { field: "max_refusal_rate", on: live, name: "Refusals", value: canary.ai?.refusal_rate, show: percent,
      limit: atMost, enough: answered(canary), pass: within },
    // Judged from counters the status does not show: see the verdict.
    { field: "max_latency_increase", on: both, name: "Mean latency over stable", limit: (m) => `≤ +${percent(m)}` },
    { field: "max_cost_per_request", on: live, name: "Cost per request", limit: (m) => `≤ ${usd(m)}` },
    { field: "max_cost_per_request_ratio", on: both, name: "Cost / stable cost", limit: (m) => `≤ ${times(m)}` },
  ];
  const rows = [{ name: "Requests", canary: number(canary.requests), stable: number(stable.requests),
    limit: `≥ ${number(min)}`, result: ready(canary) ? "pass" : "wait" }];
  for (const c of list) {
    const max = a[c.field];
    if (max == null || !c.on) continue;
    let result = "info";
    if (c.pass) result = !(c.enough ?? ready(canary)) || c.value == null ? "wait" : c.pass(c.value, max) ? "pass" : "fail";
    // Beyond a relative limit with a confidence, it breaches once significant.
    if (result === "fail" && c.significance && a.confidence != null) result = "wait";
    const shown = (v) => (v == null || !c.show ? "–" : c.show(v));
    rows.push({ name: c.name, canary: shown(c.value), stable: c.stable === undefined ? "" : shown(c.stable),
      limit: c.limit(max), result });
  }
  return rows;
}

const RESULTS = {
  pass: ["pass", "within the limit"],
  fail: ["fail", "beyond the limit"],
  wait: ["waiting", "not enough data yet (or the difference is not significant yet)"],
  info: ["see verdict", "judged by the gateway: see the verdict above"],
};

function rolloutAnalysis({ rollout, step, weights, hooks }) {
  if (!step) return "";
  const { spec } = rollout;
  const side = (name, version, s = {}) => `<div class="side"><span class="muted">${name}</span> <b>${esc(version)}</b>
    ${plural(s.requests ?? 0, "request")}, ${plural(s.errors ?? 0, "error")} (${percent(s.error_rate)}),
    p99 ${latency(s.p99_ms)}</div>`;
  const sides = `<div class="sides">${side("canary", spec.canary, step.canary)}${side("stable", spec.stable, step.stable)}</div>`;
  if (!isActive(rollout)) return `<div class="analysis"><h3>Counters of the last step</h3>${sides}</div>`;
  const shares = weights || { stable: 100 - canaryWeight(rollout), canary: canaryWeight(rollout) };
  const rows = checks(spec.analysis || {}, step, shares).map((c) => {
    const [label, title] = RESULTS[c.result];
    return `<tr class="check ${c.result}"${tid("check")}>${cell(esc(c.name))}${num(esc(c.canary))}
      ${num(esc(c.stable), "stable-col")}${num(esc(c.limit))}
      ${cell(`<span class="result ${c.result}" title="${title}">${label}</span>`)}</tr>`;
  });
  const columns = ["Check", ["Canary", "num"], ["Stable", "num stable-col"], ["Limit", "num"], "Result"];
  const { verdict = "", detail = "" } = step.analysis || {};
  const dry = spec.analysis?.dry_run ? ' <span class="pill">dry run</span>' : "";
  const calls = (hooks || []).map((h) => `<li>webhook ${esc(h.hook)} (${esc(h.type)}): ${esc(h.outcome)}</li>`);
  return `<div class="analysis">
    <h3>Analysis of this step${dry} <span class="verdict ${esc(verdict)}"${tid("rollout-verdict")}>${esc(phaseName(verdict))}</span></h3>
    <p class="detail">${esc(detail)}</p>
    ${sides}${table(columns, rows, tid("rollout-checks"))}
    ${calls.length ? `<ul class="hooks">${calls.join("")}</ul>` : ""}</div>`;
}

/** How many transitions the audit trail shows, newest first. */
const HISTORY_SHOWN = 15;

function rolloutHistory({ history }) {
  if (!history) return "";
  const older = Math.max(0, history.length - HISTORY_SHOWN);
  const rows = history.slice(older).reverse().map((t) => `<tr>${cell(when(t.at_ms), "nowrap")}${cell(esc(t.actor))}
    ${cell(`${esc(t.from_phase ?? "start")} → ${esc(t.to_phase)}`, "nowrap")}
    ${cell(`${t.from_step + 1} → ${t.to_step + 1}`, "nowrap")}${cell(esc(t.reason))}</tr>`);
  const more = older ? `<p class="muted small">and ${plural(older, "earlier transition")}</p>` : "";
  return `<details class="history" open><summary>Audit trail <span class="muted">(${plural(history.length, "transition")})</span></summary>
    ${table(["When", "By", "Phase", "Step", "Reason"], rows, tid("rollout-history"))}${more}</details>`;
}

async function act(service, action) {
  state.confirm = "";
  state.busy[service] = true;
  render();
  const done = { pause: "paused", resume: "resumed", promote: "promoted", abort: "aborted" }[action];
  try {
    const path = `/admin/rollouts/${encodeURIComponent(service)}/${action}`;
    const body = JSON.stringify({ reason: `${done} from the dashboard` });
    const { rollout: r } = await api(path, { method: "POST", body });
    const text = `${done[0].toUpperCase()}${done.slice(1)}: now ${phaseName(r.phase)} at step ${r.step + 1} of ${r.spec.steps.length}`;
    state.messages[service] = { ok: true, at: Date.now(), text };
  } catch (e) {
    if (e instanceof Unauthorized) return logout(REFUSED);
    state.messages[service] = { ok: false, at: Date.now(), text: `Not ${done}: ${e.message}` };
  } finally {
    delete state.busy[service];
  }
  refresh();
}

// ----------------------------------------------------------------- config

async function pollConfig() {
  const [versions, audit] = await Promise.all([
    read("config", "/admin/config/versions"),
    read("config", "/admin/audit"),
  ]);
  if (versions) state.versions = versions;
  if (audit) state.audit = audit.audit.slice(-20).reverse();
  const list = state.versions?.versions ?? [];
  const known = (n) => list.some((v) => v.version === n);
  if (!known(state.diff.to)) state.diff.to = list[0]?.version ?? null;
  if (!known(state.diff.from)) state.diff.from = list[1]?.version ?? state.diff.to;
}

function configView(el, notice) {
  patch(el, `<div data-part="notice"></div>
    <div class="columns"><div data-part="versions"></div><div data-part="diff"></div></div><div data-part="audit"></div>`);
  patch($('[data-part="notice"]', el), notice);
  patch($('[data-part="versions"]', el), versionsCard());
  patch($('[data-part="diff"]', el), diffCard());
  patch($('[data-part="audit"]', el), auditCard());
}

function versionsCard() {
  const versions = state.versions?.versions;
  if (!versions) return card("Config versions", empty("Reading the config versions…"));
  const m = state.configMessage;
  const message = m ? `<p class="message ${m.ok ? "ok" : "bad"}"${tid("config-message")}>${esc(m.text)}</p>` : "";
  const rows = versions.map((v) => {
    const s = v.summary || {};
    const counts = [["services", "service"], ["routes", "route"], ["consumers", "consumer"], ["models", "model"]]
      .map(([field, word]) => plural(s[field] ?? 0, word)).join(" · ");
    const activate = `data-action="activate" data-version="${v.version}"`;
    let action = '<span class="pill progressing">active</span>';
    if (!v.active && state.confirm === `activate:${v.version}`) {
      action = `<span class="confirm">Roll back to version ${v.version}?
        <button type="button" class="primary" ${activate} data-confirmed="yes"${tid("activate-confirm")}>Activate</button>
        <button type="button" data-action="cancel">Cancel</button></span>`;
    } else if (!v.active) {
      action = `<button type="button" ${activate}${tid("activate", v.version)}>Activate…</button>`;
    }
    return `<tr${tid("config-version", v.version)}>${num(`<b>${v.version}</b>`)}${cell(counts, "muted")}${cell(action, "right")}</tr>`;
  });
  return card("Config versions", message + table([["Version", "num"], "Contents", ""], rows, tid("config-versions")));
}

function diffCard() {
  const versions = state.versions?.versions ?? [];
  const options = (selected) => versions.map((v) => `<option value="${v.version}"${v.version === selected ? " selected" : ""}>
    version ${v.version}${v.active ? " (active)" : ""}</option>`).join("");
  const { result, error } = state.diff;
  let body = error ? `<p class="message bad">${esc(error)}</p>` : "";
  if (result) {
    const count = (kind) => `${result.changes.filter((c) => c.kind === kind).length} ${kind}`;
    const summary = result.changes.length ? ["added", "removed", "changed"].map(count).join(", ") : "no differences";
    const items = result.changes.map((c) => {
      const before = c.before != null ? `<del>${esc(c.before)}</del>` : "";
      const after = c.after != null ? `<ins>${esc(c.after)}</ins>` : "";
      return `<li class="change ${esc(c.kind)}"${tid("diff-change")}><span class="kind">${esc(c.kind)}</span>
        <code class="path">${esc(c.path)}</code><span class="values">${[before, after].filter(Boolean).join(" → ")}</span></li>`;
    });
    body = `<p class="muted">Version ${result.from} → ${result.to}: ${summary}</p>
      <ul class="changes"${tid("diff-changes")}>${items.join("")}</ul>`;
  }
  return card("Compare versions", `<form class="diff-form"${tid("diff-form")}>
      <label>From <select name="from"${tid("diff-from")}>${options(state.diff.from)}</select></label>
      <label>To <select name="to"${tid("diff-to")}>${options(state.diff.to)}</select></label>
      <button type="submit" class="primary"${tid("diff-show")}${versions.length ? "" : " disabled"}>Show diff</button>
    </form>${body}`);
}

function auditCard() {
  if (!state.audit.length) return "";
  const rows = state.audit.map((e) => `<tr>${cell(when(e.at_ms), "nowrap")}${cell(esc(e.token))}
    ${cell(`${esc(e.method)} ${esc(e.path)}`, "mono")}${num(e.status, e.status >= 400 ? "bad" : "")}${cell(esc(e.outcome))}</tr>`);
  const columns = ["When", "Token", "Request", ["Status", "num"], "Outcome"];
  return card("Recent admin changes", table(columns, rows, tid("audit")));
}

async function showDiff(form) {
  state.diff.from = Number(form.from.value);
  state.diff.to = Number(form.to.value);
  try {
    state.diff.result = await api(`/admin/config/versions/${state.diff.from}/diff/${state.diff.to}`);
    state.diff.error = "";
  } catch (e) {
    if (e instanceof Unauthorized) return logout(REFUSED);
    [state.diff.result, state.diff.error] = [null, `The diff cannot be shown: ${e.message}`];
  }
  render();
}

async function activate(version) {
  state.confirm = "";
  try {
    await api(`/admin/config/versions/${version}/activate`, { method: "POST" });
    state.configMessage = { ok: true, text: `Version ${version} is in force.` };
  } catch (e) {
    if (e instanceof Unauthorized) return logout(REFUSED);
    state.configMessage = { ok: false, text: `Version ${version} was not activated: ${e.message}` };
  }
  refresh();
}

// --------------------------------------------------------------------- AI

async function pollAi() {
  const usage = await read("ai", "/admin/ai/usage");
  if (usage) state.usage = usage;
}

const USAGE_FIELDS = ["requests", "input_tokens", "output_tokens", "cache_hits", "cost_usd"];

/** Usage rows summed per value of `key` (`none` when it has none), the
 * costliest first. */
function groupBy(rows, key, none) {
  const groups = new Map();
  for (const r of rows) {
    const name = r[key] ?? none;
    const g = groups.get(name) || Object.fromEntries([["name", name], ...USAGE_FIELDS.map((f) => [f, 0])]);
    for (const f of USAGE_FIELDS) g[f] += r[f] || 0;
    groups.set(name, g);
  }
  return [...groups.values()].sort((a, b) => b.cost_usd - a.cost_usd || b.requests - a.requests);
}

function usageCard(title, usage, key, none, total) {
  const groups = groupBy(usage, key, none);
  if (!groups.length) return card(title, empty("No AI requests counted yet."));
  const rows = groups.map((g) => `<tr${tid("usage", key, g.name)}>${cell(esc(g.name))}${num(number(g.requests))}
    ${num(number(g.input_tokens))}${num(number(g.output_tokens))}${num(number(g.cache_hits))}
    ${cell(meter(total.cost_usd ? g.cost_usd / total.cost_usd : 0) + usd(g.cost_usd), "share")}</tr>`);
  const columns = ["Name", ["Requests", "num"], ["Input tokens", "num"], ["Output tokens", "num"], ["Cache hits", "num"], "Spend"];
  return card(title, table(columns, rows));
}

function budgetsCard(budgets) {
  const items = budgets.map((b) => {
    const used = b.limit ? Math.min(1, b.used / b.limit) : 0;
    const level = used >= 1 ? "bad" : used >= 0.8 ? "warn" : "ok";
    return `<li class="budget"${tid("budget", b.scope, b.name, b.period)}>
      <div class="budget-head"><span><b>${esc(b.name)}</b>
        <span class="muted">${esc(b.scope)} · per ${esc(b.period)} · ${esc(b.window)}</span></span>
        <span>${number(b.left)} left</span></div>
      <span class="meter wide ${level}"><span style="width:${(used * 100).toFixed(1)}%"></span></span>
      <div class="muted small">${number(b.used)} of ${number(b.limit)} used (${percent(used, 0)})</div></li>`;
  });
  return card("Budgets", items.length ? `<ul class="budgets">${items.join("")}</ul>` : empty("No budget is configured."));
}

function aiView(el, notice) {
  if (!state.usage) return patch(el, notice || card("AI usage", empty("Reading AI usage…")));
  const usage = state.usage.usage || [];
  const [total = { requests: 0, input_tokens: 0, output_tokens: 0, cost_usd: 0, cache_hits: 0 }] = groupBy(usage, "", "all");
  const tiles = [
    tile("Requests", number(total.requests)),
    tile("Input tokens", number(total.input_tokens)),
    tile("Output tokens", number(total.output_tokens)),
    tile("Spend", usd(total.cost_usd), tid("ai-spend")),
    tile("Cache hits", number(total.cache_hits)),
  ];
  patch(el, `${notice}<div class="tiles">${tiles.join("")}</div>
    <div class="columns">${usageCard("By consumer", usage, "consumer", "(anonymous)", total)}
    ${usageCard("By tenant", usage, "tenant", "(no tenant)", total)}</div>
    ${usageCard("By model", usage, "alias", "(unknown)", total)}${budgetsCard(state.usage.budgets || [])}`);
}

// ----------------------------------------------------------------- events

function onClick(event) {
  const target = event.target.closest("[data-action]");
  if (!target || target.disabled) return;
  const { action, service, confirmed, version } = target.dataset;
  if (action === "cancel") {
    state.confirm = "";
  } else if (action === "rollout") {
    const what = target.dataset.do;
    if (!["promote", "abort"].includes(what) || confirmed) return act(service, what);
    state.confirm = `${what}:${service}`;
  } else if (action === "activate") {
    if (confirmed) return activate(Number(version));
    state.confirm = `activate:${version}`;
  }
  render();
}

function boot() {
  $("#login form").addEventListener("submit", login);
  $("#logout").addEventListener("click", () => logout("Logged out.", "info"));
  const app = $("#app");
  app.addEventListener("click", onClick);
  app.addEventListener("submit", (event) => {
    if (!event.target.matches(".diff-form")) return;
    event.preventDefault();
    showDiff(event.target);
  });
  app.addEventListener("change", (event) => {
    if (event.target.closest(".diff-form")) state.diff[event.target.name] = Number(event.target.value);
  });
  window.addEventListener("hashchange", () => {
    state.confirm = "";
    showView();
    if (state.token) refresh();
  });
  setInterval(tickClocks, 1000);
  if (state.token) start();
  else showLogin();
}

boot();
