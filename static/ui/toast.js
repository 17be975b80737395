/** Short, polite notifications ("Item added") announced to screen readers through an aria-live region. */
import { byId, h } from "./dom.js";

const LIFETIME_MS = 4000;

export function toast(message, kind = "info") {
  const region = byId("toasts");
  const node = h("p", { class: `toast toast--${kind}` }, message);
  region.append(node);
  setTimeout(() => node.remove(), LIFETIME_MS);
}
