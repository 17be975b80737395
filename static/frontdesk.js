/**
 * frontdesk.js: the browser side of frontdesk, dependency-free, as an ES module.
 *
 * The browser never holds a token: the gateway keeps the refresh token in an HttpOnly cookie and attaches
 * the access token to proxied calls itself. This module only adds what the gateway asks of every call
 * (its CSRF header, `X-CSRF: 1` by default, and same-origin credentials), turns JSON errors into thrown
 * `FrontdeskError`s, and tells the app when the user is logged out.
 *
 *   import { FrontdeskClient } from "/frontdesk.js";
 *   const client = new FrontdeskClient({ base: "", authPrefix: "/auth", csrfHeader: "X-CSRF" });
 *   // or FrontdeskClient.fromPage(): the settings the gateway wrote into the page's <meta> tags
 *   client.addEventListener("logged-out", () => showLoginForm());
 *   const me = await client.session();                       // { user, session } or null when not logged in
 *   await client.login("ada", "secret", { remember: true }); // throws FrontdeskError ("invalid_credentials")
 *   const items = await client.api("/api/items");            // parsed JSON
 *   await client.api("/api/items", { method: "POST", body: { text: "hello" } });
 *   await client.logout();
 *   await client.logout({ everywhere: true });      // every session of this user, on every device
 *   const devices = await client.sessions();        // [{ id, created_at, last_seen, client_address, user_agent,
 *                                                   //    remember, current }], this user's live sessions
 *   await client.endSession(devices[1].id);         // sign that device out (404 "not_found" if it is gone)
 *   const { remember_ttl } = await client.config(); // seconds a "remember me" login lasts, for the login form
 *   const { providers } = await client.config();    // [{ name, login_url }] when [[oidc]] providers are set
 *   client.loginWith("corp", "/orders");            // sign in at OpenID Provider "corp" (leaves the page),
 *                                                   // then back on /orders with a session
 *
 * The module also exports `frontdesk`, a client built with `FrontdeskClient.fromPage()`, and the functions
 * `api`, `session`, `refresh`, `login`, `loginWith`, `logout`, `config`, `sessions`, `endSession` as shorthands
 * for its methods.
 *
 * `logged-out` fires once per logged-in period: however many concurrent calls meet a 401, the app hears it
 * once, until the next successful `login()`, `session()` or `refresh()`.
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

const DEFAULT_AUTH_PREFIX = "/auth";
const DEFAULT_CSRF_HEADER = "X-CSRF";
// An HTTP header name (RFC 9110 token), the same rule `fetch` applies; checked up front so a typo in the
// options fails when the client is built rather than on its first call.
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** The `content` of `<meta name="…">` in `doc`, or undefined when the page has no such tag (or no DOM). */
function metaContent(doc, name) {
  const value = doc?.querySelector?.(`meta[name="${name}"]`)?.getAttribute("content");
  return value ? value : undefined;
}

/**
 * A frontdesk client. The module exports one for the page's own origin as `frontdesk`, built from the
 * page's `<meta>` tags (see `FrontdeskClient.fromPage`).
 *
 *   const client = new FrontdeskClient({ base: "", authPrefix: "/auth", csrfHeader: "X-CSRF" });
 */
export class FrontdeskClient extends EventTarget {
  #base;
  #authPrefix;
  #csrfHeader;
  #loggedOut = false;

  /**
   * @param {{base?: string, authPrefix?: string, csrfHeader?: string} | string} [options]
   *   `base`: URL prefix for every call (default "": the page's own origin);
   *   `authPrefix`: where the server mounts the auth endpoints (default "/auth");
   *   `csrfHeader`: the header the server requires on every call (default "X-CSRF"; the gateway's
   *   `[csrf] header`, session mode's `csrf_header`). A string is taken as `base`, as before.
   */
  constructor(options = {}) {
    super();
    const {
      base = "",
      authPrefix = DEFAULT_AUTH_PREFIX,
      csrfHeader = DEFAULT_CSRF_HEADER,
    } = typeof options === "string" ? { base: options } : (options ?? {});
    if (typeof base !== "string") throw new TypeError("FrontdeskClient: base must be a string");
    if (typeof authPrefix !== "string" || !authPrefix.startsWith("/") || /[?#]/.test(authPrefix)) {
      throw new TypeError(`FrontdeskClient: authPrefix must be a path such as "/auth", not ${JSON.stringify(authPrefix)}`);
    }
    if (typeof csrfHeader !== "string" || !HEADER_NAME.test(csrfHeader)) {
      throw new TypeError(`FrontdeskClient: csrfHeader must be a header name such as "X-CSRF", not ${JSON.stringify(csrfHeader)}`);
    }
    this.#base = base.replace(/\/+$/, "");
    this.#authPrefix = authPrefix.replace(/\/+$/, ""); // "/" is "": the endpoints at the root, as the server reads it
    this.#csrfHeader = csrfHeader;
  }

  /**
   * A client with the settings the server wrote into the page: `<meta name="frontdesk-auth-prefix">` and
   * `<meta name="frontdesk-csrf-header">` (the gateway fills both in `index.html` as it serves it). A tag
   * that is missing leaves the default; `options` win over both.
   *
   * @param {{base?: string, authPrefix?: string, csrfHeader?: string}} [options]
   * @param {Document} [doc]
   */
  static fromPage(options = {}, doc = globalThis.document) {
    const fromMeta = {
      authPrefix: metaContent(doc, "frontdesk-auth-prefix"),
      csrfHeader: metaContent(doc, "frontdesk-csrf-header"),
    };
    const given = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
    return new FrontdeskClient({ ...fromMeta, ...given });
  }

  /** The URL prefix of every call ("" for the page's own origin). */
  get base() {
    return this.#base;
  }

  /** Where the auth endpoints live, e.g. "/auth". */
  get authPrefix() {
    return this.#authPrefix;
  }

  /** The header every call carries (with the value "1"), e.g. "X-CSRF". */
  get csrfHeader() {
    return this.#csrfHeader;
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

  /** The current session `{ user, session }`, or null when not logged in (which fires `logged-out`). */
  async session() {
    return this.#sessionCall("/session", "GET");
  }

  /**
   * Renew the session now (`POST {authPrefix}/refresh`): resolves to `{ user, session }` with the new
   * expiries, or null when not logged in (which fires `logged-out`). The gateway already refreshes
   * silently on every call; this is for an app that wants to extend an idle session explicitly.
   */
  async refresh() {
    return this.#sessionCall("/refresh", "POST");
  }

  /**
   * Log in; resolves to `{ user, session }`. Bad credentials reject with a FrontdeskError whose code is
   * "invalid_credentials" (and do not fire `logged-out`: the user is simply still logged out).
   *
   * @param {string} username
   * @param {string} password
   * @param {{remember?: boolean} | boolean} [options] `{ remember: true }` keeps the login past the
   *   browser session (a bare boolean is accepted too, as before)
   */
  async login(username, password, options = {}) {
    const remember = typeof options === "object" && options !== null ? options.remember : options;
    const body = { username, password, remember: Boolean(remember) };
    const current = await this.#request(this.#auth("/login"), { method: "POST", body }, false);
    this.#loggedOut = false;
    return current;
  }

  /**
   * Where `loginWith(name, returnTo)` sends the browser: `{authPrefix}/oidc/{name}/login?return_to=...`.
   *
   * @param {string} name the provider's `[[oidc]] name` (as listed by `config().providers`)
   * @param {string} [returnTo] a path on this origin to come back to (the gateway turns anything else into "/")
   */
  loginUrl(name, returnTo) {
    const url = new URL(this.#base + this.#auth(`/oidc/${encodeURIComponent(name)}/login`), window.location.href);
    if (returnTo) url.searchParams.set("return_to", returnTo);
    return url.toString();
  }

  /**
   * Sign in at an OpenID Provider: a full-page navigation to the gateway, on to the provider's login page,
   * and back to `returnTo` (default: this page) with a session. The provider's tokens never reach the page.
   *
   * @param {string} name the provider's `[[oidc]] name`
   * @param {string} [returnTo] a path on this origin, e.g. "/orders?id=7"
   */
  loginWith(name, returnTo = window.location.pathname + window.location.search + window.location.hash) {
    window.location.assign(this.loginUrl(name, returnTo));
  }

  /**
   * The gateway's public settings for a login form, e.g. `{ remember_ttl: 2592000 }` (seconds); with
   * OpenID Providers configured also `password_login` (false: the password form is switched off) and
   * `providers: [{ name, login_url }]`.
   */
  async config() {
    return this.#request(this.#auth("/config"), { method: "GET" }, false);
  }

  /**
   * Log out (idempotent on the server), then fire `logged-out` with reason "logout".
   *
   * A session signed in at an OpenID Provider also ends there: the answer (and the event's `logoutUrl`)
   * names where to send the browser, a gateway link that redirects to the provider's end-session page and
   * back to the app. Follow it with `location.assign(logoutUrl)` (the demo SPA does); null otherwise.
   *
   * @param {{everywhere?: boolean}} [options] `{ everywhere: true }` ends every session of this user, on
   *   every device, not only this one (it needs a live session: without one it rejects with a 401)
   * @returns {Promise<{logoutUrl: string | null}>}
   */
  async logout(options = {}) {
    const init = { method: "POST" };
    if (options?.everywhere) init.body = { everywhere: true };
    const answer = await this.#request(this.#auth("/logout"), init, false);
    const logoutUrl = typeof answer?.logout_url === "string" ? answer.logout_url : null;
    this.#signalLoggedOut({ reason: "logout", status: 204, code: "logged_out", logoutUrl });
    return { logoutUrl };
  }

  /**
   * This user's live sessions, oldest first: `[{ id, created_at, last_seen, client_address, user_agent,
   * remember, current }]`; `current` marks the one of this browser. A 401 fires `logged-out`.
   */
  async sessions() {
    const body = await this.#request(this.#auth("/sessions"), { method: "GET" }, true);
    return body.sessions;
  }

  /**
   * End one of this user's sessions (sign that device out). Rejects with a FrontdeskError "not_found" (404)
   * when the id is not one of this user's live sessions. Ending this browser's own session is `logout()`.
   *
   * @param {string} id a session's `id` from `sessions()`
   */
  async endSession(id) {
    await this.#request(this.#auth(`/sessions/${encodeURIComponent(id)}`), { method: "DELETE" }, true);
  }

  #auth(endpoint) {
    return this.#authPrefix + endpoint;
  }

  async #sessionCall(endpoint, method) {
    try {
      const current = await this.#request(this.#auth(endpoint), { method }, true);
      this.#loggedOut = false;
      return current;
    } catch (error) {
      if (error instanceof FrontdeskError && error.status === 401) return null;
      throw error;
    }
  }

  async #request(path, options, signal401) {
    const { body, headers, ...rest } = options;
    const init = { ...rest, credentials: "same-origin", headers: new Headers(headers) };
    // The gateway refuses `/auth/*` and `/api/*` calls without it: a cross-site page cannot add a custom
    // header to a simple request, and a non-simple one needs a CORS preflight that the gateway never grants.
    init.headers.set(this.#csrfHeader, "1");
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

/**
 * The client for this page's origin, with the settings the server wrote into the page's `<meta>` tags;
 * listen to its `logged-out` event. The functions below are shorthands for its methods.
 */
export const frontdesk = FrontdeskClient.fromPage();

export const api = (path, options) => frontdesk.api(path, options);
export const session = () => frontdesk.session();
export const refresh = () => frontdesk.refresh();
export const login = (username, password, options) => frontdesk.login(username, password, options);
export const loginWith = (name, returnTo) => frontdesk.loginWith(name, returnTo);
export const logout = (options) => frontdesk.logout(options);
export const config = () => frontdesk.config();
export const sessions = () => frontdesk.sessions();
export const endSession = (id) => frontdesk.endSession(id);
