/**
 * "Your devices": the user's live sessions (`GET /auth/sessions`), each with a sign-out button, and "Sign out
 * everywhere". Signing out another device ends its session on the server (its open streams are cut within a
 * second); signing out this one is a plain logout, so the app shell takes the page back to the login form.
 */
import { busy, byId, h, setMessage, setText } from "./dom.js";
import { ago, toMillis, when } from "./format.js";
import { toast } from "./toast.js";

/** @param {import("../frontdesk.js").FrontdeskClient} client */
export function setupDevicesPanel(client) {
  const list = byId("devices-list");
  const count = byId("devices-count");
  const error = byId("devices-error");
  const everywhere = byId("devices-everywhere");
  let active = false;

  function failed(what, failure) {
    if (failure && failure.status === 401) return; // the app shell shows the login form
    setMessage(error, `${what}: ${failure?.detail || "something went wrong"}.`);
  }

  function row(device) {
    const name = device.user_agent || "Unknown device";
    const label = `Sign out ${name}${device.current ? " (this device)" : ""}`;
    const signOut = h("button", { type: "button", class: "button button--small", "aria-label": label }, "Sign out");
    signOut.addEventListener("click", () => busy(signOut, () => end(device)));
    const seen = Date.now() - toMillis(device.last_seen);
    return h(
      "li",
      { class: "device", dataset: { id: device.id, current: device.current ? "true" : "false" } },
      h(
        "span",
        { class: "device__name" },
        name,
        device.current ? h("span", { class: "badge badge--ok device__this" }, "This device") : null,
        device.remember ? h("span", { class: "badge device__remember" }, "Remembered") : null,
      ),
      h(
        "span",
        { class: "device__meta muted" },
        `${device.client_address || "unknown address"} · signed in ${when(device.created_at)} · active ${ago(seen)}`,
      ),
      signOut,
    );
  }

  function render(devices) {
    list.replaceChildren(...devices.map(row));
    setText(count, String(devices.length));
  }

  async function load() {
    try {
      const devices = await client.sessions();
      if (active) render(devices);
    } catch (failure) {
      failed("Could not load your devices", failure);
    }
  }

  async function end(device) {
    setMessage(error, "");
    if (device.current) {
      await client.logout().catch((failure) => failed("Could not sign out", failure));
      return;
    }
    try {
      await client.endSession(device.id);
      toast(`Signed out ${device.user_agent || "that device"}`, "ok");
    } catch (failure) {
      if (failure?.code !== "not_found") failed("Could not sign that device out", failure);
    }
    await load(); // gone either way: signed out now, or already before
  }

  everywhere.addEventListener("click", () =>
    busy(everywhere, () =>
      client.logout({ everywhere: true }).catch((failure) => failed("Could not sign out everywhere", failure)),
    ),
  );

  function onVisible() {
    if (document.visibilityState === "visible" && active) void load();
  }

  return {
    start() {
      active = true;
      render([]);
      void load();
      document.addEventListener("visibilitychange", onVisible);
    },
    stop() {
      active = false;
      render([]);
      setMessage(error, "");
      document.removeEventListener("visibilitychange", onVisible);
    },
  };
}
