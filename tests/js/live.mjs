// Drives the official Convex JS client against a running backend and prints
// one JSON line per observation, for tests/integration/test_js_client.py.
// Usage: node live.mjs URL CHANNEL
import { ConvexClient } from "convex/browser";
import { anyApi } from "convex/server";
import WebSocket from "ws";

const [url, channel] = process.argv.slice(2);
const out = (event) => console.log(JSON.stringify(event));
const client = new ConvexClient(url, { webSocketConstructor: WebSocket });
const timer = setTimeout(() => {
  out({ event: "timeout" });
  process.exit(2);
}, 20000);

const seen = [];
let resolveSeen;
const waitFor = (n) =>
  new Promise((resolve) => {
    resolveSeen = () => seen.length >= n && resolve();
    resolveSeen();
  });
client.onUpdate(anyApi.messages.list, { channel }, (value) => {
  seen.push(value);
  out({ event: "update", value });
  resolveSeen?.();
});

await waitFor(1);
out({ event: "ready" });
// Another client (the test) commits; then this client commits and checks that
// when its mutation resolves, the subscription already shows the effect.
await waitFor(2);
const id = await client.mutation(anyApi.messages.send, { channel, body: "from js" });
out({ event: "mutated", id, latest: seen[seen.length - 1] });
const total = await client.query(anyApi.messages.count_all, {});
out({ event: "query", total: Number(total) });
try {
  await client.mutation(anyApi.messages.send, { channel: 5, body: "x" });
} catch (e) {
  out({ event: "error", message: String(e.message ?? e) });
}
clearTimeout(timer);
await client.close();
process.exit(0);
