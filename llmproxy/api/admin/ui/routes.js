// Routes: the routes in force with their action, threshold and traffic; reloading the routes file.

import {ApiError, call} from "./api.js";
import {byId, fill, h, say, table} from "./dom.js";
import * as f from "./format.js";

const OTHER_NAMES = {
  default: "default (no route matched)",
  undecided: "undecided (could not be routed)",
  none: "not routed (L1 hits, refused before routing)",
};

export function setUpRoutes() {
  byId("routes-reload").addEventListener("click", reload);
}

export async function showRoutes() {
  say("routes-message", "");
  let listed;
  try {
    listed = await call("routes");
  } catch (error) {
    say("routes-message", error instanceof ApiError ? error.message : String(error), "error");
    return;
  }
  byId("routes-reload").disabled = !listed.configured;
  if (!listed.configured) {
    say("routes-status", "No semantic router is configured: set router.routes_file (with semantic.enabled) to route prompts.");
    fill(byId("routes-table"));
    fill(byId("routes-other"));
    return;
  }
  say("routes-status", `${f.plural(listed.routes.length, "route", "routes")} from ${listed.routes_file}. Requests and hits count since the proxy started.`);
  const num = "num";
  fill(byId("routes-table"), table({
    caption: "Routes in force, in file order",
    columns: [{label: "Route"}, {label: "Action"}, {label: "Distance threshold", cls: num}, {label: "References", cls: num},
      {label: "Cache"}, {label: "Requests", cls: num}, {label: "Hits", cls: num}],
    rows: listed.routes.map((route) => [h("strong", {}, route.name), action(route), route.distance_threshold,
      f.count(route.references), cache(route.cache), f.count(route.requests), f.count(route.hits)]),
    empty: "The routes file has no routes.",
  }));
  fill(byId("routes-other"), table({
    caption: "Traffic outside the routes",
    columns: [{label: "Decision"}, {label: "Requests", cls: num}, {label: "Hits", cls: num}],
    rows: listed.other.map((other) => [OTHER_NAMES[other.name] ?? `${other.name} (no longer in the file)`, f.count(other.requests), f.count(other.hits)]),
    empty: "No requests yet.",
  }));
}

function action(route) {
  if (route.action === "forward") {
    const to = [route.upstream ? `upstream ${route.upstream}` : "the default upstream", route.model ? `as ${route.model}` : null];
    return `forward to ${to.filter(Boolean).join(" ")}`;
  }
  if (route.action === "block") return `block (${route.status}): ${route.message}`;
  return `respond: ${route.content}`;
}

function cache(policy) {
  if (policy.no_cache) return "not cached";
  return policy.ttl_s ? `cached ${f.duration(policy.ttl_s)}` : "cached";
}

async function reload() {
  say("routes-message", "");
  say("routes-status", "Reloading…");
  try {
    const outcome = await call("routes/reload", {method: "POST"});
    await showRoutes();
    const names = outcome.routes.join(", ") || "none";
    say("routes-status", `Reloaded: ${f.plural(outcome.routes.length, "route", "routes")} in force (${names}).`);
  } catch (error) {
    say("routes-status", "");
    say("routes-message", error.message, "error");
  }
}
