/**
 * Short, polite notifications ("Item added") announced to screen readers through an aria-live region.
 * One at a time: the newest replaces the last, so the region stays one line high inside the top bar, where it
 * covers no panel. `clearToasts()` empties it when the session ends: a toast may name the user's data.
 */
import { byId, h } from "./dom.js";

const LIFETIME_MS = 4000;

export function toast(message, kind = "info") {
  const region = byId("toasts");
  const node = h("p", { class: `toast toast--${kind}`, title: message }, message);
  region.replaceChildren(node);
  setTimeout(() => node.remove(), LIFETIME_MS);
}

export function clearToasts() {
  byId("toasts").replaceChildren();
}
