// The JS client's paginated subscription (the engine behind usePaginatedQuery)
// against a running backend: pages load, then stay gapless while documents are
// inserted and deleted around their boundaries. Prints one JSON line per step.
// Usage: node paginated.mjs URL
import { ConvexClient } from "convex/browser";
import { anyApi } from "convex/server";
import WebSocket from "ws";

const [url] = process.argv.slice(2);
const out = (event) => console.log(JSON.stringify(event));
const client = new ConvexClient(url, { webSocketConstructor: WebSocket });
setTimeout(() => {
  out({ event: "timeout", last });
  process.exit(2);
}, 20000);

let last = null;
let waiter = null;
const ranks = (r) => r.results.map((d) => d.rank);
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const until = (want, status) =>
  new Promise((resolve) => {
    waiter = () => {
      if (last && same(ranks(last), want) && (!status || last.status === status)) {
        waiter = null;
        out({ event: "state", ranks: ranks(last), status: last.status });
        resolve();
      }
    };
    waiter();
  });

for (const rank of [10, 20, 30, 40, 50]) {
  await client.mutation(anyApi.ranked.add, { rank });
}
client.onPaginatedUpdate_experimental(anyApi.ranked.page, {}, { initialNumItems: 2 }, (result) => {
  last = result;
  waiter?.();
});
await until([10, 20], "CanLoadMore");
last.loadMore(2);
await until([10, 20, 30, 40], "CanLoadMore");
await client.mutation(anyApi.ranked.add, { rank: 15 });
await until([10, 15, 20, 30, 40]);
await client.mutation(anyApi.ranked.remove, { rank: 20 });
await until([10, 15, 30, 40]);
last.loadMore(2);
await until([10, 15, 30, 40, 50], "Exhausted");
await client.mutation(anyApi.ranked.add, { rank: 60 });
await until([10, 15, 30, 40, 50, 60]);
out({ event: "done" });
await client.close();
process.exit(0);
