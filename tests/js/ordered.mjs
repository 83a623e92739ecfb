// Fires a burst of mutations from one official JS client without awaiting
// each, as an app's event handlers do, and prints the order they landed in
// and the order their promises resolved in, for
// tests/integration/test_js_client.py.
// Usage: node ordered.mjs URL CHANNEL COUNT
import { ConvexClient } from "convex/browser";
import { anyApi } from "convex/server";
import WebSocket from "ws";

const [url, channel, count] = process.argv.slice(2);
const client = new ConvexClient(url, { webSocketConstructor: WebSocket });
const timer = setTimeout(() => {
  console.log(JSON.stringify({ event: "timeout" }));
  process.exit(2);
}, 30000);

const resolved = [];
await Promise.all(
  Array.from({ length: Number(count) }, (_, i) =>
    client
      .mutation(anyApi.messages.send, { channel, body: String(i) })
      .then(() => resolved.push(String(i))),
  ),
);
const landed = await client.query(anyApi.messages.list, { channel });
console.log(JSON.stringify({ event: "done", landed, resolved }));
clearTimeout(timer);
await client.close();
