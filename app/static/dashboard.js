// The cache dashboard: polls /cache/samples and draws each series as an SVG line chart.
// No dependency. Every chart is <svg class="chart" data-chart="NAME"> whose points are
// <circle data-series="..." data-index="..." data-value="..."> in sample order, the index
// being the sample's in /cache/samples (the tests read them).
"use strict";

const POLL_MS = 1000;
const WIDTH = 320;
const HEIGHT = 110;
const PAD = { left: 42, right: 8, top: 8, bottom: 16 };
const SVG_NS = "http://www.w3.org/2000/svg";

function el(tag, attrs, text) {
  const node = tag.startsWith("svg:")
    ? document.createElementNS(SVG_NS, tag.slice(4))
    : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function formatBytes(bytes) {
  if (bytes === null || bytes === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

function formatValue(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  if (Math.abs(value) >= 100 || Number.isInteger(value)) return String(Math.round(value));
  return value.toFixed(3);
}

// One chart: `series` is [{label, values: [number|null, ...]}], drawn over the same x.
function chart(name, title, series, unit) {
  const figure = el("figure", { "data-figure": name });
  const last = series.map((s) => formatValue(s.values[s.values.length - 1])).join(" / ");
  const caption = el("figcaption", {}, title);
  caption.appendChild(el("span", { class: "last" }, `${last}${unit ? " " + unit : ""}`));
  figure.appendChild(caption);
  const svg = el("svg:svg", {
    class: "chart", "data-chart": name, width: WIDTH, height: HEIGHT,
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": title,
  });
  const numbers = series.flatMap((s) => s.values.filter((v) => v !== null && v !== undefined));
  const max = numbers.length ? Math.max(...numbers) : 1;
  const min = numbers.length ? Math.min(0, ...numbers) : 0;
  const span = max - min || 1;
  const count = Math.max(1, ...series.map((s) => s.values.length));
  const x = (i) => PAD.left + (count === 1 ? 0 : (i * (WIDTH - PAD.left - PAD.right)) / (count - 1));
  const y = (v) => HEIGHT - PAD.bottom - ((v - min) * (HEIGHT - PAD.top - PAD.bottom)) / span;
  svg.appendChild(el("svg:line", { class: "axis", x1: PAD.left, y1: HEIGHT - PAD.bottom, x2: WIDTH - PAD.right, y2: HEIGHT - PAD.bottom }));
  svg.appendChild(el("svg:line", { class: "axis", x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: HEIGHT - PAD.bottom }));
  svg.appendChild(el("svg:text", { x: 2, y: PAD.top + 8 }, formatValue(max)));
  svg.appendChild(el("svg:text", { x: 2, y: HEIGHT - PAD.bottom }, formatValue(min)));
  series.forEach((s, index) => {
    const points = [];
    s.values.forEach((value, i) => {
      if (value === null || value === undefined) return;
      points.push(`${x(i).toFixed(1)},${y(value).toFixed(1)}`);
      svg.appendChild(el("svg:circle", {
        class: `s${index}`, r: 1.5, cx: x(i).toFixed(1), cy: y(value).toFixed(1),
        "data-series": s.label, "data-index": i, "data-value": value,
      }));
    });
    svg.insertBefore(el("svg:polyline", { class: `s${index}`, points: points.join(" ") }), svg.firstChild);
  });
  figure.appendChild(svg);
  if (series.length > 1) {
    const legend = el("div", { class: "legend" });
    series.forEach((s, index) => legend.appendChild(el("span", { class: `s${index}` }, s.label)));
    figure.appendChild(legend);
  }
  return figure;
}

// Per-interval rate of a cumulative counter (per second); the first sample has none.
function rate(samples, read) {
  return samples.map((sample, i) => {
    if (i === 0) return null;
    const dt = sample.t - samples[i - 1].t;
    return dt > 0 ? (read(sample) - read(samples[i - 1])) / dt : null;
  });
}

function intervalHitRate(samples, entity) {
  return samples.map((sample, i) => {
    if (i === 0) return null;
    const now = sample.entities[entity];
    const before = samples[i - 1].entities[entity];
    const hits = now.hits - before.hits;
    const lookups = hits + now.misses - before.misses;
    return lookups > 0 ? hits / lookups : null;
  });
}

function renderOverview(samples) {
  const last = samples[samples.length - 1];
  const verifier = last.verifier || {};
  document.getElementById("nines").textContent =
    verifier.nines === null || verifier.nines === undefined ? "–" : `${verifier.nines} nines`;
  document.getElementById("consistency").textContent = verifier.checked
    ? `${verifier.stale} stale of ${verifier.checked} checked`
    : "nothing checked yet";
  const breaker = document.getElementById("breaker");
  breaker.textContent = last.breaker;
  breaker.className = `big state-${last.breaker}`;
  document.getElementById("near-bytes").textContent = formatBytes(last.near_bytes);
  document.getElementById("redis-memory").textContent = formatBytes(last.redis_used_memory);
  document.getElementById("redis-keys").textContent = formatValue(last.redis_keys);

  const process = document.getElementById("process");
  process.replaceChildren(
    chart("total.hit_rate", "hit rate, all entities (cumulative, as /cache/stats)", [
      { label: "hit rate", values: samples.map((s) => s.total.hit_rate) },
    ]),
    chart("near_bytes", "near cache bytes", [{ label: "bytes", values: samples.map((s) => s.near_bytes) }]),
    chart("redis_used_memory", "Redis used_memory", [
      { label: "bytes", values: samples.map((s) => s.redis_used_memory) },
    ]),
    chart("redis_keys", "keys under the prefix", [{ label: "keys", values: samples.map((s) => s.redis_keys) }]),
    chart("verifier.nines", "consistency (nines)", [
      { label: "nines", values: samples.map((s) => (s.verifier ? s.verifier.nines : null)) },
    ]),
  );
}

function renderEntity(samples, entity) {
  const section = el("div", { class: "entity", "data-entity": entity });
  section.appendChild(el("h3", {}, entity));
  const charts = el("div", { class: "charts" });
  const stat = (name) => samples.map((s) => s.entities[entity][name]);
  const latency = (name) => samples.map((s) => (s.latency && s.latency[entity] ? s.latency[entity][name] : null));
  // the p50 and p99 series of one kind of request ("hit", "miss", "load") per interval
  const percentiles = (kind) => [
    { label: "p50", values: latency(`${kind}_p50_ms`) },
    { label: "p99", values: latency(`${kind}_p99_ms`) },
  ];
  const sinceStart = (name) => samples.map((s) => {
    const since = s.latency_since_start ? s.latency_since_start[entity] : null;
    return since ? since[name] : null;
  });
  const verifier = (name) => samples.map((s) => {
    const counts = s.verifier && s.verifier.entities ? s.verifier.entities[entity] : null;
    return counts ? counts[name] : null;
  });
  charts.append(
    chart(`${entity}.hit_rate`, "hit rate (cumulative, as /cache/stats)", [{ label: "hit rate", values: stat("hit_rate") }]),
    chart(`${entity}.interval_hit_rate`, "hit rate per interval", [{ label: "hit rate", values: intervalHitRate(samples, entity) }]),
    chart(`${entity}.request_rate`, "lookups per second", [
      { label: "lookups/s", values: rate(samples, (s) => s.entities[entity].hits + s.entities[entity].misses) },
    ], "/s"),
    chart(`${entity}.hit_latency`, "hit latency per interval", percentiles("hit"), "ms"),
    chart(`${entity}.miss_latency`, "miss latency per interval", percentiles("miss"), "ms"),
    chart(`${entity}.latency_since_start`, "latency since start (as /cache/stats)", [
      { label: "hit p50", values: sinceStart("hit_p50_ms") },
      { label: "hit p99", values: sinceStart("hit_p99_ms") },
      { label: "miss p50", values: sinceStart("miss_p50_ms") },
      { label: "miss p99", values: sinceStart("miss_p99_ms") },
    ], "ms"),
    chart(`${entity}.load_latency`, "a miss's database load", percentiles("load"), "ms"),
    chart(`${entity}.database_loads`, "database loads (total)", [{ label: "loads", values: stat("database_loads") }]),
    chart(`${entity}.invalidations`, "invalidations (total)", [{ label: "invalidations", values: stat("invalidations") }]),
    chart(`${entity}.stale`, "stale entries found by the verifier (total)", [
      { label: "stale", values: verifier("stale") },
      { label: "checked", values: verifier("checked") },
    ]),
  );
  section.appendChild(charts);
  return section;
}

function render(data) {
  const samples = data.samples || [];
  const status = document.getElementById("status");
  if (!samples.length) {
    status.textContent = "no sample yet";
    return;
  }
  const last = samples[samples.length - 1];
  status.textContent = `${samples.length} samples, every ${data.interval_s} s; last at ${new Date(last.t * 1000).toISOString()}`;
  document.body.dataset.samples = String(samples.length);
  document.body.dataset.lastT = String(last.t);
  document.body.dataset.firstT = String(samples[0].t);
  renderOverview(samples);
  const entities = document.getElementById("entities");
  entities.replaceChildren(...Object.keys(last.entities).map((entity) => renderEntity(samples, entity)));
}

async function poll() {
  try {
    const response = await fetch("/cache/samples", { cache: "no-store" });
    if (response.ok) render(await response.json());
    else document.getElementById("status").textContent = `/cache/samples answered ${response.status}`;
  } catch (error) {
    document.getElementById("status").textContent = `cannot reach /cache/samples: ${error.message}`;
  }
  setTimeout(poll, POLL_MS);
}

poll();
