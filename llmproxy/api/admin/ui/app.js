// The console's entry point: sign-in with the admin token, and navigation between the views (#overview, ...).

import {ApiError, call, onUnauthorized, session} from "./api.js";
import {showAudit, setUpAudit} from "./audit.js";
import {byId, say} from "./dom.js";
import {setUpEntries, showEntries} from "./entries.js";
import {setUpInvalidation} from "./invalidate.js";
import {setUpOverview, showOverview} from "./overview.js";
import {setUpRoutes, showRoutes} from "./routes.js";

const VIEWS = {
  overview: {title: "Overview", show: showOverview},
  entries: {title: "Entries", show: showEntries},
  routes: {title: "Routes", show: showRoutes},
  audit: {title: "Audit log", show: showAudit},
};
const DEFAULT_VIEW = "overview";
const DISABLED_HELP =
  "The admin API is off on this proxy (403): no admin token is configured. To enable it, set admin.token in the " +
  "YAML file or LLMPROXY_ADMIN__TOKEN in the environment (16 characters or more, e.g. `openssl rand -hex 32`) " +
  "and restart the proxy.";
const WRONG_TOKEN = "Wrong token: the proxy refused it (401). Check the proxy's admin.token (LLMPROXY_ADMIN__TOKEN).";

function start() {
  setUpOverview();
  setUpEntries();
  setUpInvalidation();
  setUpRoutes();
  setUpAudit();
  byId("sign-in-form").addEventListener("submit", signIn);
  byId("sign-out").addEventListener("click", () => signOut("Signed out."));
  onUnauthorized(() => signOut("The proxy no longer accepts this token (401): it may have changed. Sign in again."));
  window.addEventListener("hashchange", () => session.token && showView(currentView(), true));
  if (session.token) {
    enter(false);
  } else {
    showSignIn("");
  }
}

async function signIn(event) {
  event.preventDefault();
  const input = byId("token");
  const token = input.value.trim();
  if (!token) {
    say("sign-in-message", "Enter the admin token.", "error");
    input.focus();
    return;
  }
  say("sign-in-message", "Checking the token…");
  try {
    await call("overview", {token});
  } catch (error) {
    say("sign-in-message", refusal(error), "error");
    input.select();
    return;
  }
  session.save(token);
  input.value = "";
  say("sign-in-message", "");
  enter(true);
}

function refusal(error) {
  if (!(error instanceof ApiError)) return String(error);
  if (error.status === 401) return WRONG_TOKEN;
  if (error.status === 403) return DISABLED_HELP;
  return error.message;
}

function enter(focus) {
  byId("nav").hidden = false;
  byId("sign-out").hidden = false;
  showView(currentView(), focus);
}

function signOut(message) {
  session.clear();
  byId("nav").hidden = true;
  byId("sign-out").hidden = true;
  showSignIn(message);
}

function showSignIn(message) {
  hideViews();
  byId("view-sign-in").hidden = false;
  document.title = "Sign in · llmproxy console";
  say("sign-in-message", message);
  byId("token").focus();
}

function currentView() {
  const name = location.hash.slice(1);
  return name in VIEWS ? name : DEFAULT_VIEW;
}

function showView(name, focus) {
  hideViews();
  const view = VIEWS[name];
  byId(`view-${name}`).hidden = false;
  document.title = `${view.title} · llmproxy console`;
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (focus) byId(`${name}-title`).focus(); // screen readers hear where they are; Tab goes on from there
  view.show();
}

function hideViews() {
  for (const section of document.querySelectorAll("main > .view")) section.hidden = true;
}

start();
