/**
 * The session panel: who is signed in, when the session idles out and when it ends for good, counted down
 * live. The expiries come from `/auth/session` (re-read every minute and whenever the tab comes back), so
 * they move forward as the gateway silently rotates the refresh cookie.
 */
import { busy, byId, setText } from "./dom.js";
import { ago, duration, toMillis, when } from "./format.js";

const RECHECK_MS = 60_000;
const TICK_MS = 1000;
// Below this much idle time left, the countdown turns to a warning colour.
const WARN_MS = 5 * 60_000;

/** @param {import("../frontdesk.js").FrontdeskClient} client */
export function setupSessionPanel(client) {
  const els = {
    user: byId("session-user"),
    userId: byId("session-user-id"),
    idle: byId("idle-countdown"),
    idleAt: byId("idle-at"),
    absolute: byId("absolute-countdown"),
    absoluteAt: byId("absolute-at"),
    meter: byId("idle-meter"),
    checked: byId("session-checked"),
    badge: byId("session-badge"),
    refresh: byId("session-refresh"),
  };
  let current = null;
  let checkedAt = 0;
  let idleSpan = 0;
  let tickTimer = null;
  let recheckTimer = null;

  function render() {
    if (!current) return;
    const now = Date.now();
    const idleEnd = toMillis(current.session.idle_expires_at);
    const absEnd = toMillis(current.session.expires_at);
    const idleLeft = idleEnd - now;
    setText(els.idle, `in ${duration(idleLeft)}`);
    setText(els.absolute, `in ${duration(absEnd - now)}`);
    els.idle.classList.toggle("countdown--warn", idleLeft < WARN_MS);
    // The meter shows the share of the idle window still left, in 10% steps (classes, not inline styles).
    const share = idleSpan > 0 ? Math.max(0, Math.min(1, idleLeft / idleSpan)) : 1;
    els.meter.dataset.level = String(Math.round(share * 10));
    setText(els.checked, `Checked ${ago(now - checkedAt)}`);
    if (Math.min(idleLeft, absEnd - now) <= 0) void check();
  }

  function update(next) {
    current = next;
    checkedAt = Date.now();
    setText(els.user, next.user.username);
    setText(els.userId, `#${next.user.id}`);
    setText(els.idleAt, `· ${when(next.session.idle_expires_at)}`);
    setText(els.absoluteAt, `· ${when(next.session.expires_at)}`);
    idleSpan = Math.max(idleSpan, toMillis(next.session.idle_expires_at) - checkedAt);
    render();
  }

  let inflight = null;
  function check() {
    // One check at a time: the countdown may ask every second once a deadline has passed.
    inflight ??= client.session()
      .catch(() => current)
      .then((next) => {
        // null means the client has already fired `logged-out`; the app shell takes it from there.
        if (next && current) update(next);
      })
      .finally(() => {
        inflight = null;
      });
    return inflight;
  }

  function onVisible() {
    if (document.visibilityState === "visible" && current) void check();
  }

  els.refresh.addEventListener("click", () => busy(els.refresh, check));

  return {
    start(initial) {
      idleSpan = 0;
      update(initial);
      tickTimer = setInterval(render, TICK_MS);
      recheckTimer = setInterval(check, RECHECK_MS);
      document.addEventListener("visibilitychange", onVisible);
    },
    stop() {
      clearInterval(tickTimer);
      clearInterval(recheckTimer);
      document.removeEventListener("visibilitychange", onVisible);
      current = null;
    },
  };
}
