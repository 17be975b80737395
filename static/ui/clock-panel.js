/**
 * The live clock: server-sent events from `/api/clock`, streamed through the gateway.
 *
 * EventSource cannot send custom headers, so the gateway serves this one GET route without the X-CSRF
 * check (the refresh cookie is SameSite=Strict, so other sites still cannot open it with the user's
 * session). When the stream drops, EventSource reconnects by itself; when the gateway refuses it outright
 * (the browser then closes it for good), the panel asks `/auth/session` whether the user is still logged
 * in: if not, the client fires `logged-out`; if so, it opens a new stream a moment later.
 */
import { byId, setText } from "./dom.js";
import { clockTime } from "./format.js";

const REOPEN_MS = 3000;

/** @param {import("../frontdesk.js").FrontdeskClient} client */
export function setupClockPanel(client) {
  const time = byId("clock-time");
  const status = byId("clock-status");
  const statusText = byId("clock-status-text");
  const count = byId("clock-count");
  let source = null;
  let ticks = 0;
  let reopenTimer = null;
  let running = false;

  function setStatus(state, text) {
    status.dataset.state = state;
    setText(statusText, text);
  }

  function onTick(event) {
    const data = JSON.parse(event.data);
    ticks += 1;
    time.dataset.ticks = String(ticks);
    time.dataset.serverTime = data.time;
    time.dataset.seq = String(data.seq); // restarts at 1 when the stream had to be reopened
    setText(time, clockTime(data.time));
    setText(count, `${ticks} event${ticks === 1 ? "" : "s"} received`);
    setStatus("live", "Live");
  }

  async function onError() {
    if (!source || source.readyState !== EventSource.CLOSED) {
      setStatus("waiting", "Reconnecting…");
      return;
    }
    close();
    setStatus("waiting", "Reconnecting…");
    const current = await client.session().catch(() => undefined);
    if (running && current !== null) reopenTimer = setTimeout(open, REOPEN_MS);
  }

  function open() {
    if (!running) return;
    source = new EventSource("/api/clock");
    source.addEventListener("tick", onTick);
    source.addEventListener("error", onError);
  }

  function close() {
    if (source) source.close();
    source = null;
  }

  return {
    start() {
      running = true;
      ticks = 0;
      time.dataset.ticks = "0";
      setText(time, "--:--:--");
      setText(count, "");
      setStatus("waiting", "Connecting…");
      open();
    },
    stop() {
      running = false;
      clearTimeout(reopenTimer);
      close();
      setStatus("off", "Stopped");
    },
  };
}
