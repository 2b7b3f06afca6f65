// Entries: search the catalog of cached answers, page through it, inspect one answer, delete one.

import {ApiError, call} from "./api.js";
import {byId, confirmAction, fill, h, say, table} from "./dom.js";
import * as f from "./format.js";

const PAGE_SIZE = 25;
const state = {filters: {}, offset: 0, total: 0, shown: null};

export function setUpEntries() {
  byId("entry-search").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    state.filters = Object.fromEntries([...form.entries()].map(([k, v]) => [k, v.trim()]).filter(([, v]) => v !== ""));
    state.offset = 0;
    showEntries();
  });
  byId("entries-prev").addEventListener("click", () => turn(-PAGE_SIZE));
  byId("entries-next").addEventListener("click", () => turn(PAGE_SIZE));
  byId("entry-dialog-close").addEventListener("click", () => byId("entry-dialog").close());
  byId("entry-dialog-delete").addEventListener("click", () => remove(state.shown));
}

function turn(step) {
  state.offset = Math.max(0, state.offset + step);
  showEntries();
}

export async function showEntries() {
  say("entries-message", "");
  say("entries-summary", "Loading…");
  let listed;
  try {
    listed = await call("entries", {params: {...state.filters, limit: PAGE_SIZE, offset: state.offset}});
  } catch (error) {
    say("entries-summary", "");
    say("entries-message", error instanceof ApiError ? error.message : String(error), "error");
    return;
  }
  state.total = listed.total;
  if (state.offset > 0 && listed.entries.length === 0 && listed.total > 0) return turn(-PAGE_SIZE); // page emptied
  render(listed.entries);
}

function render(entries) {
  const first = entries.length ? state.offset + 1 : 0;
  const last = state.offset + entries.length;
  const filtered = Object.keys(state.filters).length ? " matching the search" : "";
  say("entries-summary", `${f.plural(state.total, "entry", "entries")}${filtered}; showing ${first}–${last}.`);
  const pages = Math.max(1, Math.ceil(state.total / PAGE_SIZE));
  byId("entries-page").textContent = `Page ${Math.floor(state.offset / PAGE_SIZE) + 1} of ${pages}`;
  byId("entries-prev").disabled = state.offset === 0;
  byId("entries-next").disabled = last >= state.total;
  const now = Date.now() / 1000;
  fill(byId("entries-table"), table({
    caption: "Cached answers, newest first",
    columns: [
      {label: "Prompt", cls: "prompt"}, {label: "Model"}, {label: "Tenant"}, {label: "Namespace"}, {label: "Kind"},
      {label: "Layer"}, {label: "Age", cls: "num"}, {label: "TTL left", cls: "num"}, {label: "Actions", cls: "actions"},
    ],
    rows: entries.map((entry) => [
      h("span", {title: entry.prompt}, entry.prompt),
      entry.model,
      h("code", {title: entry.scope}, f.shortId(entry.tenant)),
      entry.namespace ?? f.DASH,
      entry.kind,
      layer(entry),
      f.duration(now - entry.created_at),
      f.duration(entry.expires_in_s),
      h("span", {class: "row-actions"},
        h("button", {type: "button", class: "secondary small", onclick: () => inspect(entry.id), "aria-label": `View entry: ${entry.prompt}`}, "View"),
        h("button", {type: "button", class: "danger small", onclick: () => remove(entry), "aria-label": `Delete entry: ${entry.prompt}`}, "Delete")),
    ]),
    empty: "No cached answers match.",
  }));
}

function layer(entry) {
  const where = entry.semantic ? "L1 + L2" : "L1";
  return entry.promoted_from ? `${where} (copy of ${f.shortId(entry.promoted_from)})` : where;
}

async function inspect(id) {
  let entry;
  try {
    entry = await call(`entries/${id}`);
  } catch (error) {
    say("entries-message", error.message, "error");
    if (error instanceof ApiError && error.status === 404) showEntries();
    return;
  }
  state.shown = entry;
  byId("entry-dialog-title").textContent = `Entry ${f.shortId(entry.id)}`;
  fill(byId("entry-dialog-body"),
    h("dl", {class: "facts"},
      pair("Prompt", entry.prompt), pair("Id", h("code", {}, entry.id)), pair("Model", entry.model),
      pair("Kind", entry.kind), pair("Scope", h("code", {}, entry.scope)), pair("Namespace", entry.namespace ?? f.DASH),
      pair("Layer", layer(entry)), pair("Stored", f.when(entry.created_at * 1000)), pair("TTL left", f.duration(entry.expires_in_s))),
    h("h3", {}, "Stored answer"),
    h("p", {class: "answer", "data-answer": ""}, answerText(entry) ?? "(no text: see the stored JSON)"),
    h("details", {}, h("summary", {}, "Stored JSON"), h("pre", {class: "json"}, JSON.stringify(entry.response, null, 2))));
  byId("entry-dialog").showModal();
}

function pair(label, value) {
  return h("div", {}, h("dt", {}, label), h("dd", {}, value));
}

/** The text of a cached answer: a chat message, a completion, a Response's messages, or a note for an embedding. */
function answerText(entry) {
  const choices = entry.response?.choices;
  if (Array.isArray(choices) && choices.length) {
    const texts = choices.map((choice) => choice.message?.content ?? choice.text).filter((t) => typeof t === "string");
    if (texts.length) return texts.join("\n\n");
  }
  const output = entry.response?.output;
  if (Array.isArray(output)) {
    const parts = output.flatMap((item) => (item?.type === "message" && Array.isArray(item.content) ? item.content : []));
    const texts = parts.map((part) => part?.text ?? part?.refusal).filter((t) => typeof t === "string");
    if (texts.length) return texts.join("\n\n");
  }
  const vectors = entry.response?.data;
  if (Array.isArray(vectors) && vectors.length && Array.isArray(vectors[0].embedding)) {
    return `${vectors.length} embedding vector(s) of ${vectors[0].embedding.length} dimensions.`;
  }
  return null;
}

async function remove(entry) {
  if (!entry) return;
  const confirmed = await confirmAction({
    title: "Delete this entry?",
    text: `The cached answer to “${entry.prompt}” (${entry.model}) and any copies promoted from it are deleted. The next identical request goes upstream.`,
    action: "Delete entry",
  });
  if (!confirmed) return;
  const dialog = byId("entry-dialog");
  if (dialog.open) dialog.close();
  try {
    const outcome = await call(`entries/${entry.id}`, {method: "DELETE"});
    const copies = outcome.deleted - 1;
    say("entries-message", "");
    await showEntries();
    say("entries-summary", `Deleted the entry${copies > 0 ? ` and ${copies} promoted ${copies === 1 ? "copy" : "copies"}` : ""}. ${byId("entries-summary").textContent}`);
  } catch (error) {
    say("entries-message", error.message, "error");
  }
}
