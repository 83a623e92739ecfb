// The JS client's paginated subscription (the engine behind usePaginatedQuery)
// on an empty table: the first page is empty and done, so its end cursor is
// the end of the range, and every later insert shows in it (Convex's
// behaviour); once the page has grown past twice its first size the client
// splits it at the server's splitCursor. Prints one JSON line per step.
// Usage: node compat_paginated_empty.mjs URL
import { ConvexClient } from "convex/browser";
import { anyApi } from "convex/server";
import WebSocket from "ws";

const [url] = process.argv.slice(2);
const out = (event) => console.log(JSON.stringify(event));
const client = new ConvexClient(url, { webSocketConstructor: WebSocket });
let last = null;
let waiter = null;
setTimeout(() => {
  out({ event: "timeout", last: last && { ns: ns(last), status: last.status } });
  process.exit(2);
}, 30000);

const ns = (r) => r.results.map((d) => d.n);
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const until = (want, status) =>
  new Promise((resolve) => {
    waiter = () => {
      if (last && same(ns(last), want) && last.status === status) {
        waiter = null;
        out({ event: "state", ns: ns(last), status: last.status });
        resolve();
      }
    };
    waiter();
  });

client.onPaginatedUpdate_experimental(anyApi.items.page, {}, { initialNumItems: 1 }, (result) => {
  last = result;
  waiter?.();
});
await until([], "Exhausted");
await client.mutation(anyApi.items.add, { n: 1 });
await until([1], "Exhausted");
await client.mutation(anyApi.items.add, { n: 2 });
await until([1, 2], "Exhausted");
await client.mutation(anyApi.items.add, { n: 0.5 });
await until([0.5, 1, 2], "Exhausted");
await client.mutation(anyApi.items.add, { n: 3 });
await until([0.5, 1, 2, 3], "Exhausted");
out({ event: "done" });
await client.close();
process.exit(0);
