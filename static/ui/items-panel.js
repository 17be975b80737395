/** The items list: create and delete through the gateway's proxy (`/api/items`), stored per user upstream. */
import { busy, byId, h, setMessage, setText } from "./dom.js";
import { when } from "./format.js";
import { toast } from "./toast.js";

/** @param {import("../frontdesk.js").FrontdeskClient} client */
export function setupItemsPanel(client) {
  const form = byId("item-form");
  const input = byId("item-text");
  const add = byId("item-add");
  const list = byId("items-list");
  const empty = byId("items-empty");
  const count = byId("items-count");
  const error = byId("items-error");
  let active = false;

  function failed(what, failure) {
    // A 401 is handled by the app shell (login form); anything else is worth a message here.
    if (failure && failure.status === 401) return;
    setMessage(error, `${what}: ${failure?.detail || "something went wrong"}.`);
  }

  function row(item) {
    const label = `Delete “${item.text}”`;
    const remove = h(
      "button",
      { type: "button", class: "icon-button", "aria-label": label, title: "Delete" },
      h("span", { "aria-hidden": "true" }, "×"),
    );
    remove.addEventListener("click", () => removeItem(item, remove));
    return h(
      "li",
      { class: "item", dataset: { id: item.id } },
      h("span", { class: "item__text" }, item.text),
      h("time", { class: "item__time", datetime: item.created_at }, when(item.created_at)),
      remove,
    );
  }

  function render(items) {
    list.replaceChildren(...items.map(row));
    empty.hidden = items.length > 0;
    setText(count, String(items.length));
  }

  async function load() {
    try {
      const { items } = await client.api("/api/items");
      if (active) render(items);
    } catch (failure) {
      failed("Could not load items", failure);
    }
  }

  async function removeItem(item, button) {
    setMessage(error, "");
    await busy(button, async () => {
      try {
        await client.api(`/api/items/${encodeURIComponent(item.id)}`, { method: "DELETE" });
        list.querySelector(`[data-id="${CSS.escape(item.id)}"]`)?.remove();
        const left = list.children.length;
        empty.hidden = left > 0;
        setText(count, String(left));
        toast(`Deleted “${item.text}”`);
        input.focus();
      } catch (failure) {
        failed("Could not delete the item", failure);
      }
    });
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    setMessage(error, "");
    const text = input.value.trim();
    if (!text) {
      setMessage(error, "Type something to add.");
      input.focus();
      return;
    }
    await busy(add, async () => {
      try {
        const item = await client.api("/api/items", { method: "POST", body: { text } });
        list.append(row(item));
        empty.hidden = true;
        setText(count, String(list.children.length));
        input.value = "";
        toast(`Added “${item.text}”`, "ok");
      } catch (failure) {
        failed("Could not add the item", failure);
      }
    });
    input.focus();
  });

  return {
    start() {
      active = true;
      render([]);
      empty.hidden = true;
      void load();
    },
    stop() {
      active = false;
      render([]);
      setMessage(error, "");
      input.value = "";
    },
  };
}
