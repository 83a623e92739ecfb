// The JS client's setAuth(fetchToken) against a backend with auth: the first
// token is already expired (the server answers AuthError and the client asks
// for a fresh one), the second lives 12 s (the client refreshes it before it
// expires, 10 s ahead) and the third carries name "refreshed". Prints one
// JSON line: the identities the live query showed, the fetches and the
// onChange calls. Usage: node auth.mjs URL EXPIRED SHORT LONG
import { ConvexClient } from "convex/browser";
import { anyApi } from "convex/server";
import WebSocket from "ws";

const [url, ...tokens] = process.argv.slice(2);
const client = new ConvexClient(url, { webSocketConstructor: WebSocket });
const fetches = [];
const changes = [];
const seen = [];
const guard = setTimeout(() => {
  console.log(JSON.stringify({ timedOut: true, fetches, changes, seen }));
  process.exit(2);
}, 40000);
client.setAuth(
  async ({ forceRefreshToken }) => {
    fetches.push(forceRefreshToken);
    return tokens[Math.min(fetches.length - 1, tokens.length - 1)];
  },
  (isAuthenticated) => changes.push(isAuthenticated),
);
await new Promise((resolve) => {
  client.onUpdate(anyApi.users.whoami, {}, (identity) => {
    seen.push(identity === null ? null : { subject: identity.subject, name: identity.name ?? null });
    if (identity !== null && identity.name === "refreshed") resolve();
  });
});
clearTimeout(guard);
console.log(JSON.stringify({ fetches, changes, seen }));
await client.close();
process.exit(0);
