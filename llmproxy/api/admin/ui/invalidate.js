// Invalidation (by model, namespace, tenant, age or prompt similarity: a dry-run count first, then a confirmed
// delete of exactly the conditions counted) and flush (behind typing "flush-all").

import {call} from "./api.js";
import {byId, confirmAction, say} from "./dom.js";
import {showEntries} from "./entries.js";
import {plural} from "./format.js";

const FLUSH_WORD = "flush-all";
const LABELS = {model: "model", namespace: "namespace", tenant: "tenant", older_than: "older than", prompt: "similar to", distance: "within distance"};
let counted = null; // {body, matched} of the last dry run; any edit of the form clears it

export function setUpInvalidation() {
  const form = byId("invalidate-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    dryRun();
  });
  form.addEventListener("input", forgetCount);
  byId("invalidate-run").addEventListener("click", run);
  const typed = byId("flush-confirm");
  typed.addEventListener("input", () => {
    byId("flush-run").disabled = typed.value.trim() !== FLUSH_WORD;
  });
  byId("flush-form").addEventListener("submit", (event) => {
    event.preventDefault();
    flush();
  });
}

function conditions() {
  const body = {};
  for (const [name, raw] of new FormData(byId("invalidate-form")).entries()) {
    const value = raw.trim();
    if (value !== "") body[name] = value;
  }
  if (body.distance !== undefined) {
    const distance = Number(body.distance);
    if (!Number.isFinite(distance)) throw new Error("Distance must be a number from 0 to 2.");
    body.distance = distance;
  }
  return body;
}

function described(body) {
  return Object.entries(body).map(([name, value]) => `${LABELS[name] ?? name} “${value}”`).join(", ");
}

function forgetCount() {
  counted = null;
  const button = byId("invalidate-run");
  button.disabled = true;
  button.textContent = "Delete matching entries";
  say("invalidate-result", "");
}

async function dryRun() {
  forgetCount();
  say("invalidate-message", "");
  try {
    const body = conditions();
    const outcome = await call("invalidate", {method: "POST", body: {...body, dry_run: true}});
    counted = {body, matched: outcome.matched};
    const matches = plural(outcome.matched, "entry matches", "entries match");
    say("invalidate-result", `Dry run: ${matches} ${described(body)}. Nothing was deleted.`);
    const button = byId("invalidate-run");
    button.disabled = outcome.matched === 0;
    button.textContent = `Delete ${plural(outcome.matched, "matching entry", "matching entries")}`;
  } catch (error) {
    say("invalidate-message", error.message, "error");
  }
}

async function run() {
  if (counted === null) return;
  const {body, matched} = counted;
  const confirmed = await confirmAction({
    title: "Delete the matching entries?",
    text: `The dry run counted ${plural(matched, "cached answer", "cached answers")} ${described(body)}. They are deleted from L1, L2 and the catalog, with their promoted copies.`,
    action: `Delete ${plural(matched, "entry", "entries")}`,
  });
  if (!confirmed) return;
  try {
    const outcome = await call("invalidate", {method: "POST", body});
    forgetCount();
    say("invalidate-result", `Deleted ${plural(outcome.deleted, "entry", "entries")} ${described(body)}.`);
    await showEntries();
  } catch (error) {
    say("invalidate-message", error.message, "error");
  }
}

async function flush() {
  const typed = byId("flush-confirm");
  if (typed.value.trim() !== FLUSH_WORD) return;
  say("flush-message", "");
  try {
    const outcome = await call("flush", {method: "POST", body: {confirm: FLUSH_WORD}});
    typed.value = "";
    byId("flush-run").disabled = true;
    say("flush-result", `Flushed: ${plural(outcome.deleted, "entry", "entries")} deleted.`);
    await showEntries();
  } catch (error) {
    say("flush-message", error.message, "error");
  }
}
