// The admin API as the console calls it: the token from this tab's session storage, sent as a Bearer header, and
// errors in OpenAI's shape turned into ApiError. The page lives at <base>/admin/ui/, so the API is at "../".

const TOKEN_KEY = "llmproxy.admin-token";
const ACTOR = "console"; // who the audit log names for changes made here
const ADMIN_BASE = new URL("../", document.baseURI);

export class ApiError extends Error {
  constructor(status, message, param = null, code = null) {
    super(message);
    this.name = "ApiError";
    this.status = status; // 0 when the proxy could not be reached
    this.param = param;
    this.code = code;
  }
}

let unauthorized = () => {};

/** What to do when a call made with the stored token is refused (401): the token changed or was revoked. */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  save(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

/** Call the admin API: call("entries", {params: {q: "reverse"}}), call("flush", {method: "POST", body: {...}}). */
export async function call(path, {method = "GET", params = {}, body, token} = {}) {
  const url = new URL(path, ADMIN_BASE);
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, String(value));
  }
  const headers = {
    Accept: "application/json",
    Authorization: `Bearer ${token ?? session.token ?? ""}`,
    "X-LLMProxy-Actor": ACTOR,
  };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
  } catch {
    throw new ApiError(0, "The proxy could not be reached. Is it running?");
  }
  const data = await response.json().catch(() => null);
  if (response.ok) return data;
  const error = data?.error ?? {};
  const failure = new ApiError(response.status, error.message ?? `HTTP ${response.status}`, error.param, error.code);
  if (response.status === 401 && token === undefined) unauthorized(failure);
  throw failure;
}
