// The official JS client subscribed to a search query: each write that changes
// the result (an insert that matches, an edit that stops matching, a delete)
// is pushed. Prints one JSON line per step.
// Usage: node search_live.mjs URL CHANNEL
import { ConvexClient } from "convex/browser";
import { anyApi } from "convex/server";
import WebSocket from "ws";

const [url, channel] = process.argv.slice(2);
const out = (event) => console.log(JSON.stringify(event));
const client = new ConvexClient(url, { webSocketConstructor: WebSocket });
setTimeout(() => {
  out({ event: "timeout", last });
  process.exit(2);
}, 30000);

let last = null;
let waiter = null;
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const until = (want) =>
  new Promise((resolve) => {
    waiter = () => {
      if (last && same(last, want)) {
        waiter = null;
        out({ event: "state", value: last });
        resolve();
      }
    };
    waiter();
  });

client.onUpdate(anyApi.messages.search, { text: "otter", channel }, (value) => {
  last = value;
  waiter?.();
});
await until([]);
const a = await client.mutation(anyApi.messages.send, { body: "an otter swims", channel });
await until(["an otter swims"]);
await client.mutation(anyApi.messages.send, { body: "otter otter otter", channel });
await until(["otter otter otter", "an otter swims"]);
await client.mutation(anyApi.messages.send, { body: "an otter elsewhere", channel: "other" });
await client.mutation(anyApi.messages.edit, { id: a, body: "a beaver swims" });
await until(["otter otter otter"]);
out({ event: "done" });
await client.close();
process.exit(0);
