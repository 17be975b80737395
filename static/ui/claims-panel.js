/**
 * What the upstream API received: `/api/me` answers with the claims of the access token the gateway
 * attached. The page shows those claims; the token itself never reaches the browser. When the gateway has
 * minted a new access token since the last look, the `jti` changes and the panel says so.
 */
import { busy, byId, h, setMessage, setText } from "./dom.js";
import { ago, duration, toMillis, when } from "./format.js";

const LABELS = [
  ["sub", "Subject (user)"],
  ["preferred_username", "Username"],
  ["sid", "Session id"],
  ["jti", "Token id"],
  ["iat", "Issued"],
  ["exp", "Expires"],
  ["iss", "Issuer"],
  ["aud", "Audience"],
];
const SLOW_MS = 1500;

function describe(name, value) {
  if (name === "iat") return when(value);
  if (name === "exp") {
    const left = toMillis(value) - Date.now();
    if (left > 0) return `${when(value)} (in ${duration(left)})`;
    return `${when(value)} (expired; the gateway mints a new one on the next call)`;
  }
  return Array.isArray(value) ? value.join(", ") : String(value);
}

/** @param {import("../frontdesk.js").FrontdeskClient} client */
export function setupClaimsPanel(client) {
  const list = byId("claims-list");
  const badge = byId("claims-badge");
  const received = byId("claims-received");
  const error = byId("claims-error");
  const refresh = byId("claims-refresh");
  const slow = byId("slow-button");
  const slowResult = byId("slow-result");
  let lastJti = null;
  let receivedAt = 0;
  let timer = null;
  let claims = null;

  function render() {
    if (!claims) return;
    const known = new Set(LABELS.map(([name]) => name));
    const extra = Object.keys(claims).filter((name) => !known.has(name));
    const rows = [...LABELS.filter(([name]) => name in claims), ...extra.map((name) => [name, name])];
    list.replaceChildren(
      ...rows.map(([name, label]) =>
        h(
          "div",
          { class: "facts__row", dataset: { claim: name } },
          h("dt", {}, label, " ", h("code", { class: "muted" }, name)),
          h("dd", {}, describe(name, claims[name])),
        ),
      ),
    );
    setText(received, `Received ${ago(Date.now() - receivedAt)}`);
  }

  async function load() {
    setMessage(error, "");
    try {
      const body = await client.api("/api/me");
      claims = body.claims;
      receivedAt = Date.now();
      badge.hidden = lastJti === null || lastJti === claims.jti;
      lastJti = claims.jti;
      // Exposed for tests and curious readers: which access token answered, and until when it is valid.
      list.dataset.jti = claims.jti;
      list.dataset.exp = String(claims.exp);
      render();
    } catch (failure) {
      if (failure?.status !== 401) setMessage(error, `Could not ask the API: ${failure?.detail || "error"}.`);
    }
  }

  refresh.addEventListener("click", () => busy(refresh, load));
  slow.addEventListener("click", () =>
    busy(slow, async () => {
      setText(slowResult, "Waiting for the API…");
      const started = performance.now();
      try {
        await client.api(`/api/slow?ms=${SLOW_MS}`);
        const seconds = ((performance.now() - started) / 1000).toFixed(1);
        setText(slowResult, `The slow call answered after ${seconds} s.`);
      } catch (failure) {
        setText(slowResult, failure?.status === 401 ? "" : `The slow call failed: ${failure?.detail || "error"}.`);
      }
    }),
  );

  return {
    start() {
      lastJti = null;
      badge.hidden = true;
      setText(slowResult, "");
      void load();
      timer = setInterval(render, 1000);
    },
    stop() {
      clearInterval(timer);
      claims = null;
      list.replaceChildren();
      delete list.dataset.jti;
      delete list.dataset.exp;
      setText(received, "");
      setText(slowResult, "");
    },
  };
}
