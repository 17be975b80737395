/**
 * The demo app shell: one listener for `logged-out`, two views (login form, dashboard), and panels that
 * start when a session begins and stop when it ends.
 */
import { frontdesk } from "./frontdesk.js";
import { busy, byId, setText } from "./ui/dom.js";
import { setupClaimsPanel } from "./ui/claims-panel.js";
import { setupClockPanel } from "./ui/clock-panel.js";
import { setupDevicesPanel } from "./ui/devices-panel.js";
import { setupItemsPanel } from "./ui/items-panel.js";
import { setupLogin } from "./ui/login.js";
import { setupSessionPanel } from "./ui/session-panel.js";
import { clearToasts, toast } from "./ui/toast.js";

// The page's one client: `frontdesk` is `FrontdeskClient.fromPage()`, built with the auth prefix and CSRF header
// the gateway wrote into index.html. One client, not one per module: the once-per-session `logged-out` state
// belongs to a client, so a second one would never hear of the first one's login.
const client = frontdesk;
const boot = byId("boot");
const dashboard = byId("app-view");
const account = byId("account");
const panels = {
  session: setupSessionPanel(client),
  items: setupItemsPanel(client),
  claims: setupClaimsPanel(client),
  clock: setupClockPanel(client),
  devices: setupDevicesPanel(client),
};
const loginView = setupLogin(client, (current) => enter(current, { focus: true }));
let signedIn = false;

function enter(current, { focus = false } = {}) {
  const name = current.user.username;
  setText(byId("account-name"), name);
  setText(byId("account-avatar"), name.slice(0, 1).toUpperCase());
  setText(byId("greeting-name"), name);
  boot.hidden = true;
  loginView.hide();
  account.hidden = false;
  dashboard.hidden = false;
  document.body.dataset.view = "app";
  if (signedIn) panels.session.stop();
  panels.session.start(current);
  if (!signedIn) {
    panels.items.start();
    panels.claims.start();
    panels.clock.start();
    panels.devices.start();
  }
  signedIn = true;
  if (focus) byId("dashboard-title").focus();
}

function leave(notice) {
  for (const panel of Object.values(panels)) panel.stop();
  clearToasts(); // "Added “…”" must not outlive the session that added it
  signedIn = false;
  boot.hidden = true;
  dashboard.hidden = true;
  account.hidden = true;
  document.body.dataset.view = "login";
  loginView.show(notice);
}

client.addEventListener("logged-out", (event) => {
  const reason = event.detail?.reason;
  if (reason === "logout" && event.detail?.logoutUrl) {
    // Signed in at an OpenID Provider: end the session there too (RP-initiated logout), then come back here.
    window.location.assign(event.detail.logoutUrl);
    return;
  }
  leave(reason === "logout" ? "You have signed out." : signedIn ? "Your session has ended. Please sign in again." : "");
});

const logoutButton = byId("logout-button");
logoutButton.addEventListener("click", () =>
  busy(logoutButton, async () => {
    try {
      await client.logout();
    } catch (failure) {
      toast(`Could not sign out: ${failure?.detail || "error"}. Try again.`, "error");
    }
  }),
);

// Start: an existing session (cookie from an earlier visit or another tab) goes straight to the dashboard.
client
  .session()
  .then((current) => {
    if (current) enter(current);
  })
  .catch(() => leave("Cannot reach the server right now. Try signing in in a moment."));
