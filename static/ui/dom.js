/** Tiny DOM helpers: the app builds markup with these, never with innerHTML, so user text stays text. */

/** The element with this id; throws early and clearly when the page and the script disagree. */
export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`missing #${id} in index.html`);
  return node;
}

/**
 * Create an element: `h("li", { class: "item", dataset: { id } }, "text", child)`.
 * Attributes go through setAttribute (never `style`, which the Content-Security-Policy forbids inline).
 */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

export function show(node, visible = true) {
  node.hidden = !visible;
}

export function setText(node, text) {
  node.textContent = text ?? "";
}

/** Show `text` in an alert element, or hide it when empty. */
export function setMessage(node, text) {
  node.textContent = text || "";
  node.hidden = !text;
}

/** Mark a button busy while `work` runs, so double clicks do not double-submit. */
export async function busy(button, work) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}
