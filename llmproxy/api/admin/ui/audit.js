// Audit log: who changed what (invalidations, flushes, deletions, dry runs too), newest first.

import {ApiError, call} from "./api.js";
import {byId, fill, h, say, table} from "./dom.js";
import * as f from "./format.js";

export function setUpAudit() {
  byId("audit-refresh").addEventListener("click", showAudit);
  byId("audit-limit").addEventListener("change", showAudit);
}

export async function showAudit() {
  say("audit-message", "");
  let log;
  try {
    log = await call("audit", {params: {limit: byId("audit-limit").value}});
  } catch (error) {
    say("audit-message", error instanceof ApiError ? error.message : String(error), "error");
    return;
  }
  say("audit-status", `The latest ${f.plural(log.events.length, "change", "changes")}, newest first.`);
  const num = "num";
  fill(byId("audit-table"), table({
    caption: "Changes to the cache",
    columns: [{label: "When"}, {label: "Who"}, {label: "Client"}, {label: "Action"}, {label: "Conditions"},
      {label: "Matched", cls: num}, {label: "Deleted", cls: num}, {label: "Dry run"}],
    rows: log.events.map((event) => [
      h("time", {datetime: event.at}, f.when(Date.parse(event.at))),
      event.who,
      event.client,
      event.action,
      conditions(event.filters),
      f.count(event.matched),
      f.count(event.deleted),
      event.dry_run ? "yes" : "no",
    ]),
    empty: "No changes recorded yet.",
  }));
}

function conditions(filters) {
  const pairs = Object.entries(filters ?? {});
  if (!pairs.length) return f.DASH;
  return pairs.map(([name, value]) => `${name} = ${value}`).join(", ");
}
