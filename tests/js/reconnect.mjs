// Mutations in flight while the test cuts the socket (through a proxy): the
// client reconnects, re-sends what was not answered, and converges.
// Usage: node reconnect.mjs URL CHANNEL COUNT
import { ConvexClient } from "convex/browser";
import { anyApi } from "convex/server";
import WebSocket from "ws";

const [url, channel, countText] = process.argv.slice(2);
const count = Number(countText);
const out = (event) => console.log(JSON.stringify(event));
setTimeout(() => {
  out({ event: "timeout", last });
  process.exit(2);
}, 45000);

const client = new ConvexClient(url, { webSocketConstructor: WebSocket });
let last = [];
let waiter = null;
client.onUpdate(anyApi.messages.list, { channel }, (value) => {
  last = value;
  waiter?.();
});
out({ event: "started" });
const bodies = Array.from({ length: count }, (_, i) => `m${i}`);
const settled = [];
for (const body of bodies) {
  settled.push(client.mutation(anyApi.messages.send, { channel, body }));
  await new Promise((r) => setTimeout(r, 60));
}
const ids = await Promise.all(settled);
out({ event: "mutated", ids: ids.length });
await new Promise((resolve) => {
  waiter = () => last.length >= count && resolve();
  waiter();
});
out({ event: "final", value: last });
await client.close();
process.exit(0);
