// Overview: traffic over a range (from /admin/stats), Redis and breaker health (from /admin/overview), per model.

import {ApiError, call} from "./api.js";
import {chart} from "./charts.js";
import {byId, fill, h, say, table} from "./dom.js";
import * as f from "./format.js";

// A bucket per range that gives 60-120 points and divides the series' resolutions (1 s, 1 min, 1 h).
export const RANGES = {
  "1h": {from: "-1h", bucket: "1m", label: "the last hour", spanMs: 3600_000},
  "24h": {from: "-24h", bucket: "15m", label: "the last 24 hours", spanMs: 86400_000},
  "7d": {from: "-7d", bucket: "2h", label: "the last 7 days", spanMs: 7 * 86400_000},
  "30d": {from: "-30d", bucket: "6h", label: "the last 30 days", spanMs: 30 * 86400_000},
};

const RESULTS = [
  {key: "hits_l1", name: "L1 hits (exact)", cls: "s-l1"},
  {key: "hits_l2", name: "L2 hits (semantic)", cls: "s-l2"},
  {key: "misses", name: "Misses", cls: "s-miss"},
  {key: "bypasses", name: "Bypasses", cls: "s-bypass"},
  {key: "errors", name: "Errors", cls: "s-error"},
];

export function setUpOverview() {
  for (const radio of document.querySelectorAll('input[name="range"]')) radio.addEventListener("change", showOverview);
  byId("overview-refresh").addEventListener("click", showOverview);
}

export async function showOverview() {
  const key = document.querySelector('input[name="range"]:checked').value;
  const range = RANGES[key];
  say("overview-status", "Loading…");
  say("overview-message", "");
  const [stats, health] = await Promise.allSettled([
    call("stats", {params: {from: range.from, bucket: range.bucket}}),
    call("overview"),
  ]);
  if (health.status === "fulfilled") showHealth(health.value);
  if (stats.status === "fulfilled") {
    showTraffic(stats.value, range);
  } else {
    fill(byId("kpis"));
    fill(byId("charts"));
    fill(byId("models"));
  }
  const failure = [stats, health].find((outcome) => outcome.status === "rejected");
  if (failure !== undefined) say("overview-message", describe(failure.reason), "error");
  say("overview-status", `Traffic over ${range.label}, updated ${new Date().toLocaleTimeString()}.`);
}

function describe(error) {
  if (error instanceof ApiError && error.code === "history_unavailable") {
    return `No traffic history: ${error.message} Health figures below still hold.`;
  }
  return error instanceof ApiError ? error.message : String(error);
}

function showTraffic(stats, range) {
  const totals = stats.totals;
  const lookups = totals.hits_l1 + totals.hits_l2 + totals.misses;
  fill(
    byId("kpis"),
    kpi("requests", "Requests", f.count(totals.requests), `${f.count(totals.errors)} errors, ${f.count(totals.bypasses)} bypasses`),
    kpi("hit-rate", "Hit rate", f.share(totals.hit_rate),
      `L1 ${f.share(f.ratio(totals.hits_l1, lookups))} · L2 ${f.share(f.ratio(totals.hits_l2, lookups))}`),
    kpi("latency", "Average latency", f.ms(totals.avg_latency_ms), "arrival to last byte"),
    kpi("tokens", "Tokens saved", f.count(totals.tokens_saved), "served from cache"),
    kpi("dollars", "Dollars saved", f.usd(totals.cost_saved_usd), "at metrics.prices"),
  );
  fill(byId("charts"), charts(stats, range));
  showModels(stats.by_model);
}

function kpi(name, label, value, detail) {
  return h("div", {class: "kpi", "data-kpi": name}, h("dt", {}, label), h("dd", {class: "value"}, value), h("dd", {class: "detail"}, detail));
}

function charts(stats, range) {
  const buckets = stats.buckets;
  const times = buckets.map((bucket) => bucket.start_ms);
  const every = `per ${f.duration(stats.bucket_s)} bucket over ${range.label}`;
  const column = (key) => buckets.map((bucket) => bucket[key]);
  const lookups = buckets.map((b) => b.hits_l1 + b.hits_l2 + b.misses);
  const layerShare = (key) => buckets.map((b, i) => f.ratio(b[key], lookups[i]));
  const t = stats.totals;
  const base = {times, spanMs: range.spanMs};
  return [
    chart({...base, kind: "bar", wide: true, title: "Requests by cache result", yLabel: "requests", format: f.count,
      description: `Requests ${every}, stacked by result: ${RESULTS.map((r) => `${r.name} ${f.count(t[r.key])}`).join(", ")}.`,
      series: RESULTS.map((r) => ({...r, values: column(r.key)}))}),
    chart({...base, kind: "line", title: "Hit rate by layer", yLabel: "share of lookups", format: f.share, max: 1,
      description: `Hits as a share of cache lookups ${every}: ${f.share(t.hit_rate)} in all.`,
      series: [
        {name: "All hits", cls: "s-all", values: column("hit_rate")},
        {name: "L1 (exact)", cls: "s-l1", values: layerShare("hits_l1")},
        {name: "L2 (semantic)", cls: "s-l2", values: layerShare("hits_l2")},
      ]}),
    chart({...base, kind: "line", title: "Average latency", yLabel: "milliseconds", format: f.ms,
      description: `Mean time from arrival to last byte ${every}: ${f.ms(t.avg_latency_ms)} over the range.`,
      series: [{name: "Average latency", cls: "s-latency", values: column("avg_latency_ms")}]}),
    chart({...base, kind: "bar", title: "Tokens saved", yLabel: "tokens", format: f.count,
      description: `Tokens served from cache ${every}: ${f.count(t.tokens_saved)} in all.`,
      series: [{name: "Tokens saved", cls: "s-tokens", values: column("tokens_saved")}]}),
    chart({...base, kind: "bar", title: "Dollars saved", yLabel: "US dollars", format: f.usd,
      description: `Upstream cost of the answers served from cache ${every}: ${f.usd(t.cost_saved_usd)} in all.`,
      series: [{name: "Dollars saved", cls: "s-dollars", values: column("cost_saved_usd")}]}),
  ];
}

function showModels(byModel) {
  const rows = Object.entries(byModel)
    .sort(([, a], [, b]) => b.requests - a.requests)
    .map(([model, m]) => [model, f.count(m.requests), f.count(m.hits), f.share(f.ratio(m.hits, m.requests)), f.count(m.tokens_saved), f.usd(m.cost_saved_usd)]);
  const num = "num";
  fill(byId("models"), table({
    caption: "Traffic per model over the range",
    columns: [{label: "Model"}, {label: "Requests", cls: num}, {label: "Hits", cls: num}, {label: "Hits / requests", cls: num},
      {label: "Tokens saved", cls: num}, {label: "Dollars saved", cls: num}],
    rows,
    empty: "No requests in this range.",
  }));
}

function showHealth(health) {
  const redis = health.redis;
  fill(
    byId("redis-health"),
    fact("Status", badge(redis.status, redis.status === "ok" ? "good" : "bad"), "redis-status"),
    fact("Breaker", badge(redis.breaker, redis.breaker === "closed" ? "good" : "bad"), "redis-breaker"),
    fact("Cached entries", f.count(redis.entries), "entries"),
    fact("Memory used", f.bytes(redis.used_memory_bytes), "memory"),
    fact("Eviction policy", redis.eviction_policy, "eviction-policy"),
    fact("Keys evicted", f.count(redis.evicted_keys), "evicted"),
    fact("Keys expired", f.count(redis.expired_keys), "expired"),
    fact("Semantic cache", health.semantic.enabled ? `on, threshold ${health.semantic.threshold}` : "off", "semantic"),
  );
  fill(byId("redis-warnings"), redis.warnings.map((text) => h("p", {class: "notice warn"}, text)));
  const upstreams = table({
    caption: "Upstream circuit breakers",
    columns: [{label: "Upstream"}, {label: "Breaker"}, {label: "Times opened", cls: "num"}],
    rows: health.upstreams.map((u) => [u.name, badge(u.breaker, u.breaker === "closed" ? "good" : "bad"), f.count(u.opened)]),
  });
  const components = {redis: 0, embedder: 0, ...health.fail_open};
  const failOpen = table({
    caption: "Served without (part of) the cache, since the proxy started",
    columns: [{label: "Failed component"}, {label: "Requests", cls: "num"}],
    rows: Object.entries(components).map(([name, value]) => [name, f.count(value)]),
  });
  const bypasses = table({
    caption: "Cache bypasses by reason, since the proxy started",
    columns: [{label: "Reason"}, {label: "Requests", cls: "num"}],
    rows: Object.entries(health.bypasses).map(([name, value]) => [name, f.count(value)]),
    empty: "No bypasses.",
  });
  fill(byId("breakers"), upstreams, failOpen, bypasses);
}

function fact(label, value, name) {
  return h("div", {"data-fact": name}, h("dt", {}, label), h("dd", {}, value));
}

function badge(text, tone) {
  return h("span", {class: `badge ${tone}`}, text);
}
