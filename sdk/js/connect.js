// @grantline/connect: the connect page of a Grantline connect session, from a platform's front end.
// No dependencies and no framework: one ES module for the browser.
//
//   import { connect, outcomeFromRedirect } from "@grantline/connect";
//   const outcome = await connect(connectUrl);          // { status: "connected", provider, connection_id }
//
// `connectUrl` is the `connect_url` your back end got from `POST /v1/connect-sessions`. The page opens
// in a popup; the gateway posts the outcome to this page's origin (only if that origin is in your
// tenant's allow-list) and the popup closes. When the browser blocks the popup, this page goes to the
// connect page itself and comes back with the outcome in its query: call `outcomeFromRedirect()` on
// load. Treat an outcome as a hint for the interface; confirm a connection with your back end
// (`GET /v1/connections/{connection_id}`) before relying on it.

const MESSAGE_TYPE = "grantline.connect.outcome";
const OUTCOME_KEYS = ["status", "provider", "connection_id", "error"];

/**
 * Open the connect page for a connect session. Resolves with the outcome once the user is done
 * ({ status: "closed" } when they close the popup first). When popups are blocked the page navigates
 * away and the promise never settles: the outcome arrives through `outcomeFromRedirect()`.
 */
export function connect(connectUrl, options = {}) {
  const target = new URL(connectUrl, window.location.href);
  const gatewayOrigin = target.origin;
  const popupUrl = new URL(target.href);
  popupUrl.searchParams.set("opener_origin", window.location.origin);
  const width = options.width || 520;
  const height = options.height || 720;
  const left = Math.max(0, Math.round(window.screenX + (window.outerWidth - width) / 2));
  const top = Math.max(0, Math.round(window.screenY + (window.outerHeight - height) / 2));
  const features = `popup,width=${width},height=${height},left=${left},top=${top}`;
  const popup = window.open(popupUrl.href, options.windowName || "grantline-connect", features);
  if (!popup) {
    const redirectUrl = new URL(target.href);
    redirectUrl.searchParams.set("return_to", options.returnTo || window.location.href);
    window.location.assign(redirectUrl.href);
    return new Promise(() => {});
  }
  return new Promise((resolve) => {
    let watcher = null;
    const finish = (outcome) => {
      window.removeEventListener("message", onMessage);
      window.clearInterval(watcher);
      resolve(outcome);
    };
    function onMessage(event) {
      // Only the popup we opened, speaking from the gateway's origin, can say how it went.
      if (event.origin !== gatewayOrigin || event.source !== popup) return;
      const data = event.data;
      if (!data || typeof data !== "object" || data.type !== MESSAGE_TYPE) return;
      finish(pick(data));
    }
    window.addEventListener("message", onMessage);
    watcher = window.setInterval(() => {
      if (popup.closed) finish({ status: "closed", provider: null, connection_id: null, error: null });
    }, 400);
  });
}

/**
 * The outcome a redirect brought back to this page (popups were blocked), or null. The outcome
 * parameters are removed from the address bar.
 */
export function outcomeFromRedirect(location = window.location) {
  const url = new URL(location.href);
  if (!url.searchParams.has("status")) return null;
  const outcome = pick(Object.fromEntries(url.searchParams));
  for (const key of OUTCOME_KEYS) url.searchParams.delete(key);
  if (location === window.location && window.history && window.history.replaceState) {
    window.history.replaceState(window.history.state, "", url.href);
  }
  return outcome;
}

function pick(source) {
  const outcome = {};
  for (const key of OUTCOME_KEYS) {
    const value = source[key];
    outcome[key] = typeof value === "string" && value !== "" ? value : null;
  }
  return outcome;
}
