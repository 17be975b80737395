/**
 * frontdesk.js: the browser side of frontdesk, dependency-free, as an ES module.
 *
 * The browser never holds a token: the gateway keeps the refresh token in an HttpOnly cookie and attaches
 * the access token to proxied calls itself. This module only adds what the gateway asks of every call
 * (the `X-CSRF: 1` header and same-origin credentials), turns JSON errors into thrown `FrontdeskError`s,
 * and tells the app when the user is logged out.
 *
 *   import { frontdesk, api, config, login, logout, session } from "/frontdesk.js";
 *   frontdesk.addEventListener("logged-out", () => showLoginForm());
 *   const me = await session();           // { user, session } or null when not logged in
 *   await login("ada", "secret", true);    // throws FrontdeskError (code "invalid_credentials") on a bad password
 *   const items = await api("/api/items"); // parsed JSON
 *   await api("/api/items", { method: "POST", body: { text: "hello" } });
 *   await logout();
 *   const { remember_ttl } = await config(); // seconds a "remember me" login lasts, for the login form
 *
 * `logged-out` fires once per logged-in period: however many concurrent calls meet a 401, the app hears it
 * once, until the next successful `login()` or `session()`.
 */

/** An HTTP or network failure; `status` is 0 when the server could not be reached. */
export class FrontdeskError extends Error {
  /**
   * @param {number} status HTTP status (0 for a network failure)
   * @param {string} code machine-readable code from the JSON error body, e.g. "invalid_credentials"
   * @param {string} detail human-readable text from the server
   * @param {number | null} retryAfter seconds from a `Retry-After` header (rate limiting), if any
   */
  constructor(status, code, detail, retryAfter = null) {
    super(detail || code);
    this.name = "FrontdeskError";
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.retryAfter = retryAfter;
  }
}

/** Is `body` something `fetch` sends as is, rather than a value to serialise as JSON? */
function isRawBody(body) {
  return (
    typeof body === "string" ||
    body instanceof FormData ||
    body instanceof Blob ||
    body instanceof URLSearchParams ||
    body instanceof ArrayBuffer ||
    ArrayBuffer.isView(body) ||
    body instanceof ReadableStream
  );
}

async function parseBody(response) {
  if (response.status === 204 || response.status === 205) return null;
  const text = await response.text();
  if (!text) return null;
  const type = response.headers.get("Content-Type") || "";
  if (!type.includes("json")) return text;
  try {
    return JSON.parse(text);
  } catch {
    // A proxy in between may answer HTML or garbage with a JSON type; keep the text rather than fail twice.
    return text;
  }
}

function errorFrom(response, body) {
  const json = body && typeof body === "object" ? body : {};
  const code = typeof json.error === "string" ? json.error : `http_${response.status}`;
  const detail = typeof json.detail === "string" ? json.detail : response.statusText || code;
  const seconds = Number.parseInt(response.headers.get("Retry-After") || "", 10);
  return new FrontdeskError(response.status, code, detail, Number.isFinite(seconds) ? seconds : null);
}

/** A frontdesk client; the module exports one for the page's own origin as `frontdesk`. */
export class FrontdeskClient extends EventTarget {
  #base;
  #loggedOut = false;

  /** @param {string} base URL prefix for every path (default: same origin) */
  constructor(base = "") {
    super();
    this.#base = base;
  }

  /**
   * Call the gateway. `options` are `fetch` options, except that a plain-object or array `body` is sent
   * as JSON. Resolves to the parsed JSON body (text for non-JSON, null for an empty body); rejects with
   * a FrontdeskError for any non-2xx status. A 401 also fires `logged-out` (once, see above).
   *
   * @param {string} path e.g. "/api/items"
   * @param {RequestInit & {body?: unknown}} [options]
   */
  async api(path, options = {}) {
    return this.#request(path, options, true);
  }

  /** The current session `{ user, session }`, or null when not logged in. */
  async session() {
    try {
      const current = await this.#request("/auth/session", { method: "GET" }, true);
      this.#loggedOut = false;
      return current;
    } catch (error) {
      if (error instanceof FrontdeskError && error.status === 401) return null;
      throw error;
    }
  }

  /**
   * Log in; resolves to `{ user, session }`. Bad credentials reject with a FrontdeskError whose code is
   * "invalid_credentials" (and do not fire `logged-out`: the user is simply still logged out).
   */
  async login(username, password, remember = false) {
    const body = { username, password, remember: Boolean(remember) };
    const current = await this.#request("/auth/login", { method: "POST", body }, false);
    this.#loggedOut = false;
    return current;
  }

  /** The gateway's public settings for a login form, e.g. `{ remember_ttl: 2592000 }` (seconds). */
  async config() {
    return this.#request("/auth/config", { method: "GET" }, false);
  }

  /** Log out (idempotent on the server), then fire `logged-out` with reason "logout". */
  async logout() {
    await this.#request("/auth/logout", { method: "POST" }, false);
    this.#signalLoggedOut({ reason: "logout", status: 204, code: "logged_out" });
  }

  async #request(path, options, signal401) {
    const { body, headers, ...rest } = options;
    const init = { ...rest, credentials: "same-origin", headers: new Headers(headers) };
    // The gateway refuses `/auth/*` and `/api/*` calls without it: a cross-site page cannot add a custom
    // header to a simple request, and a non-simple one needs a CORS preflight that the gateway never grants.
    init.headers.set("X-CSRF", "1");
    if (!init.headers.has("Accept")) init.headers.set("Accept", "application/json");
    if (body !== undefined && body !== null) {
      if (isRawBody(body)) {
        init.body = body;
      } else {
        init.body = JSON.stringify(body);
        if (!init.headers.has("Content-Type")) init.headers.set("Content-Type", "application/json");
      }
    }

    let response;
    try {
      response = await fetch(this.#base + path, init);
    } catch (error) {
      if (error && error.name === "AbortError") throw error;
      throw new FrontdeskError(0, "network_error", "cannot reach the server");
    }
    const parsed = await parseBody(response);
    if (response.ok) return parsed;

    const error = errorFrom(response, parsed);
    if (response.status === 401 && signal401) {
      this.#signalLoggedOut({ reason: "unauthorized", status: 401, code: error.code });
    }
    throw error;
  }

  #signalLoggedOut(detail) {
    // One event per logged-in period: concurrent calls failing together must not stack up login screens.
    if (this.#loggedOut) return;
    this.#loggedOut = true;
    this.dispatchEvent(new CustomEvent("logged-out", { detail }));
  }
}

/** The client for this page's origin; listen to its `logged-out` event. */
export const frontdesk = new FrontdeskClient();

export const api = (path, options) => frontdesk.api(path, options);
export const session = () => frontdesk.session();
export const login = (username, password, remember) => frontdesk.login(username, password, remember);
export const logout = () => frontdesk.logout();
export const config = () => frontdesk.config();
