/** The login form: submits credentials, says "wrong username or password" and nothing more on a 401. */
import { FrontdeskError } from "../frontdesk.js";
import { byId, h, setMessage, setText, show } from "./dom.js";
import { lifetime } from "./format.js";

function messageFor(error) {
  if (!(error instanceof FrontdeskError)) return "Something went wrong. Please try again.";
  // Deliberately identical for an unknown user and a wrong password: the form must not say which.
  if (error.status === 401) return "wrong username or password";
  if (error.status === 429) {
    const wait = error.retryAfter ? ` in ${error.retryAfter} s` : " later";
    return `Too many attempts. Try again${wait}.`;
  }
  if (error.status === 0) return "Cannot reach the server. Check your connection and try again.";
  return `Sign-in failed (${error.status}). Please try again.`;
}

/**
 * A sign-in at a provider that could not start or did not complete sends the browser back here with
 * `?login_error=<code>`: a code from the gateway's fixed list (gateway/oidc_login.py LOGIN_ERROR_REASONS),
 * never the provider's own text.
 * Only these sentences are ever shown, whatever the URL says; an unknown code gets the general one.
 */
const PROVIDER_ERRORS = {
  access_denied: "Sign-in was cancelled, or this account is not allowed to sign in here.",
  invalid_state: "That sign-in took too long or was started again elsewhere. Please try again.",
  invalid_id_token: "The identity provider's answer could not be verified. Please try again.",
  provider_refused: "The identity provider did not complete the sign-in. Please try again.",
  provider_unavailable: "The identity provider cannot be reached right now. Please try again later.",
  unknown_provider: "That sign-in option is not available here. Please choose another way to sign in.",
  rate_limited: "Too many sign-ins at once. Please wait a moment and try again.",
};
const PROVIDER_ERROR = "Sign-in with your identity provider failed. Please try again.";

/** The sentence for this page's `?login_error=`, or ""; the parameter is taken off the address (a reload or a
 * bookmark must not say it again). */
function takeProviderError() {
  const url = new URL(window.location.href);
  const code = url.searchParams.get("login_error");
  if (code === null) return "";
  url.searchParams.delete("login_error");
  window.history.replaceState(window.history.state, "", url.pathname + url.search + url.hash);
  return Object.hasOwn(PROVIDER_ERRORS, code) ? PROVIDER_ERRORS[code] : PROVIDER_ERROR;
}

/**
 * One "Sign in with {name}" button per OpenID Provider the gateway lists; the password form goes away when
 * the gateway has switched password login off. Each button leaves the page for the provider and comes back
 * here signed in.
 */
function showProviders(client, settings) {
  const providers = Array.isArray(settings?.providers) ? settings.providers : [];
  const passwordLogin = settings?.password_login !== false;
  show(byId("login-form"), passwordLogin);
  show(byId("login-or"), passwordLogin && providers.length > 0);
  const box = byId("login-providers");
  for (const provider of providers) {
    const button = h(
      "button",
      {
        type: "button",
        class: "button button--block login__provider",
        dataset: { provider: provider.name },
        onclick: () => client.loginWith(provider.name, "/"),
      },
      `Sign in with ${provider.name}`,
    );
    box.append(button);
  }
  show(box, providers.length > 0);
}

/**
 * Wire the form once. `onLoggedIn(current)` receives the `{ user, session }` from the gateway.
 * Returns `{ show(notice), hide() }` for the app shell.
 *
 * @param {import("../frontdesk.js").FrontdeskClient} client
 * @param {(current: object) => void} onLoggedIn
 */
export function setupLogin(client, onLoggedIn) {
  const view = byId("login-view");
  const form = byId("login-form");
  const username = byId("username");
  const password = byId("password");
  const remember = byId("remember");
  const submit = byId("login-submit");
  const error = byId("login-error");
  const notice = byId("login-notice");
  const providerError = byId("login-provider-error");
  setMessage(providerError, takeProviderError());

  // "for 30 days": whatever tokens.remember_ttl says, never a number baked into the page. Without an answer
  // the hint stays "on this device" rather than guessing.
  client
    .config()
    .then((settings) => {
      const span = lifetime(settings?.remember_ttl);
      if (span) setText(byId("remember-hint"), `for ${span} on this device`);
      showProviders(client, settings);
    })
    .catch(() => {});

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    setMessage(error, "");
    setMessage(providerError, "");
    if (!username.value.trim() || !password.value) {
      setMessage(error, "Enter your username and password.");
      (username.value.trim() ? password : username).focus();
      return;
    }
    submit.disabled = true;
    submit.setAttribute("aria-busy", "true");
    form.classList.add("is-busy");
    try {
      const current = await client.login(username.value.trim(), password.value, { remember: remember.checked });
      password.value = "";
      setMessage(notice, "");
      onLoggedIn(current);
    } catch (failure) {
      setMessage(error, messageFor(failure));
      password.select();
      password.focus();
    } finally {
      submit.disabled = false;
      submit.removeAttribute("aria-busy");
      form.classList.remove("is-busy");
    }
  });

  return {
    show(noticeText = "") {
      setMessage(notice, noticeText);
      setMessage(error, "");
      view.hidden = false;
      (username.value ? password : username).focus();
    },
    hide() {
      view.hidden = true;
    },
  };
}
