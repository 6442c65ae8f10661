// The relay's live status page: polls /status.json every `sample_secs`
// (1 to 10 s, backing off after errors) and draws each series as an SVG
// area chart. Plain ES2020, no dependencies; the page's CSP allows this
// file and nothing inline. Missing or malformed fields show as "–".
"use strict";

const NS = "http://www.w3.org/2000/svg";
const W = 320, H = 140, L = 4, R = 316, T = 18, B = 114;
const STEPS = [5, 10, 15, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600];
const MAX_BACKOFF_MS = 60000;

const setText = (id, text) => {
  const e = document.getElementById(id);
  if (e) e.textContent = text;
};
const num = (x) => (typeof x === "number" && Number.isFinite(x) ? x : null);
const clamp = (x, lo, hi) => Math.min(hi, Math.max(lo, x));
const obj = (x) => (x && typeof x === "object" ? x : {});

function trim(s) {
  return s.includes(".") ? s.replace(/\.?0+$/, "") : s;
}

function bytes(v) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  if (i === 0) return `${Math.round(v)} B`;
  return `${trim(v.toFixed(v < 100 ? 1 : 0))} ${units[i]}`;
}

function count(v) {
  return Math.round(v).toLocaleString("en-US");
}

function rate(v) {
  if (v === 0) return "0";
  if (v < 1) return trim(v.toFixed(2));
  if (v < 10) return trim(v.toFixed(1));
  return count(v);
}

function format(v, kind) {
  if (v === null) return "–";
  return kind === "bytes" ? bytes(v) : kind === "rate" ? rate(v) : count(v);
}

function duration(secs) {
  const s = Math.floor(secs);
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d} d ${h} h`;
  if (h > 0) return `${h} h ${m} min`;
  if (m > 0) return `${m} min ${s % 60} s`;
  return `${s} s`;
}

/** A round axis top a little above `v`: 1, 2, 2.5 or 5 times a power of ten (of the 1024 unit for bytes). */
function niceMax(v, kind) {
  if (!(v > 0)) return 1;
  v *= 1.15;
  let unit = 1;
  if (kind === "bytes") while (v / unit >= 1024) unit *= 1024;
  const x = v / unit;
  const p = 10 ** Math.floor(Math.log10(x));
  const m = [1, 2, 2.5, 5, 10].find((k) => k * p >= x * (1 - 1e-9)) ?? 10;
  const nice = m * p * unit;
  return kind === "rate" ? nice : Math.max(1, Math.ceil(nice));
}

function agoLabel(secs, span) {
  if (secs === 0) return "now";
  return span >= 120 ? `${Math.round(secs / 60)} min ago` : `${Math.round(secs)} s ago`;
}

function el(name, attrs = {}, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

const xy = (x, y) => `${x.toFixed(1)},${y.toFixed(1)}`;

/** Draws one chart card from the sample times and values. */
function drawChart(card, times, values, sampleSecs) {
  const name = card.dataset.series || "";
  const kind = card.dataset.kind || "count";
  const svg = card.querySelector("svg");
  const title = (card.querySelector("h3")?.textContent || name).trim();
  const what = kind === "rate" ? `${title} per second` : title;
  const current = card.querySelector('[data-role="current"]');
  const maxOut = card.querySelector('[data-role="max"]');
  if (!svg) return;
  const pts = [];
  const n = Math.min(times.length, values.length);
  for (let i = 0; i < n; i++) {
    const t = num(times[i]), v = num(values[i]);
    if (t !== null && v !== null) pts.push([t, Math.max(0, v)]);
  }
  if (pts.length === 0) {
    svg.replaceChildren(el("text", { x: W / 2, y: H / 2, class: "empty", "text-anchor": "middle" }, "collecting…"));
    svg.setAttribute("aria-label", `${what}: collecting…`);
    card.dataset.state = "empty";
    for (const out of [current, maxOut]) if (out) { out.textContent = "–"; out.dataset.value = ""; }
    return;
  }
  const last = pts[pts.length - 1][1];
  const max = pts.reduce((m, p) => Math.max(m, p[1]), 0);
  const t1 = pts[pts.length - 1][0];
  const t0 = Math.min(pts[0][0], t1 - Math.max(1, sampleSecs));
  const span = t1 - t0;
  const top = niceMax(max, kind);
  const xOf = (t) => L + ((t - t0) / span) * (R - L);
  const yOf = (v) => B - (v / top) * (B - T);
  const line = pts.length === 1 ? [[L, yOf(last)], [R, yOf(last)]] : pts.map(([t, v]) => [xOf(t), yOf(v)]);
  const d = "M" + line.map(([x, y]) => xy(x, y)).join(" L");
  const gradient = `g-${name}`;

  const parts = [];
  const defs = el("defs");
  const grad = el("linearGradient", { id: gradient, x1: 0, y1: 0, x2: 0, y2: 1 });
  grad.append(el("stop", { offset: "0%", class: "stop-top" }), el("stop", { offset: "100%", class: "stop-bottom" }));
  defs.append(grad);
  parts.push(defs);
  for (const v of [top, top / 2]) parts.push(el("line", { x1: L, x2: R, y1: yOf(v), y2: yOf(v), class: "grid" }));
  parts.push(el("line", { x1: L, x2: R, y1: B, y2: B, class: "axis" }));
  const step = STEPS.find((s) => span / s <= 4) ?? Math.ceil(span / 4);
  let lastX = Infinity;
  for (let ago = 0; ago <= span + 1e-6; ago += step) {
    const x = xOf(t1 - ago);
    if (lastX - x < 44) continue;
    const anchor = ago === 0 ? "end" : x - L < 28 ? "start" : "middle";
    parts.push(el("line", { x1: x, x2: x, y1: B, y2: B + 3, class: "tick" }));
    const at = { x: ago === 0 ? R : x, y: B + 16, "text-anchor": anchor, class: "label" };
    parts.push(el("text", at, agoLabel(ago, span)));
    lastX = x;
  }
  parts.push(el("text", { x: L, y: T - 6, class: "label ymax" }, format(top, kind) + (kind === "rate" ? "/s" : "")));
  const area = `${d} L${xy(line[line.length - 1][0], B)} L${xy(line[0][0], B)} Z`;
  parts.push(el("path", { d: area, class: "area", fill: `url(#${gradient})` }));
  parts.push(el("path", { d, class: "line" }));
  const end = line[line.length - 1];
  parts.push(el("circle", { cx: end[0], cy: end[1], r: 2.5, class: "dot" }));
  svg.replaceChildren(...parts);

  const unit = kind === "rate" ? " per second" : "";
  svg.setAttribute("aria-label",
    `${what} over the last ${duration(span)}: now ${format(last, kind)}${unit}, max ${format(max, kind)}${unit}`);
  card.dataset.state = "drawn";
  if (current) { current.textContent = format(last, kind); current.dataset.value = String(last); }
  if (maxOut) { maxOut.textContent = format(max, kind); maxOut.dataset.value = String(max); }
}

function render(status) {
  const s = obj(status);
  const version = typeof s.version === "string" ? s.version : "–";
  setText("version", version);
  const up = num(s.uptime_secs);
  setText("uptime", up === null ? "–" : duration(up));
  const sample = clamp(num(s.sample_secs) ?? 10, 1, 3600);

  const totals = obj(s.totals);
  for (const out of document.querySelectorAll("[data-total]")) {
    const v = num(totals[out.dataset.total]);
    out.textContent = format(v, out.dataset.kind || "count");
    out.dataset.value = v === null ? "" : String(v);
  }

  const series = obj(s.series);
  const times = Array.isArray(series.t) ? series.t : [];
  for (const card of document.querySelectorAll("[data-series]")) {
    const values = series[card.dataset.series];
    drawChart(card, times, Array.isArray(values) ? values : [], sample);
  }
  const first = num(times[0]), newest = num(times[times.length - 1]);
  const covered = first !== null && newest !== null ? newest - first : 0;
  const full = 3600; // the relay keeps one hour
  const every = `one sample every ${sample} s`;
  setText("window", times.length === 0 ? "collecting…"
    : covered + sample >= full ? every : `${every} · ${duration(covered + sample)} of history so far`);
  return clamp(sample, 1, 10); // poll at least every 10 s
}

function badge(state, text, title) {
  const b = document.getElementById("connection");
  if (!b) return;
  b.dataset.state = state;
  b.textContent = text;
  if (title) b.title = title;
  document.body.dataset.connection = state;
}

async function load() {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 8000);
  try {
    const resp = await fetch("/status.json", { cache: "no-store", signal: abort.signal });
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    const data = await resp.json();
    if (!data || typeof data !== "object") throw new Error("not a status object");
    return data;
  } finally {
    clearTimeout(timer);
  }
}

let intervalMs = 2000;
let failures = 0;

async function poll() {
  let next = intervalMs;
  let data;
  try {
    data = await load();
  } catch (e) {
    failures++;
    next = Math.min(MAX_BACKOFF_MS, intervalMs * 2 ** Math.min(failures, 6));
    badge("disconnected", `disconnected · retrying in ${Math.round(next / 1000)} s`, String(e && e.message));
  }
  if (data) {
    failures = 0;
    try {
      intervalMs = 1000 * render(data);
      next = intervalMs;
      badge("live", "live", `updated ${new Date().toLocaleTimeString()}`);
      document.body.dataset.ready = "1";
    } catch (e) {
      console.error("status page: could not render", e);
    }
  }
  setTimeout(poll, next);
}

poll();
