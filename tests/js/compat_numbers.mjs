// What a JS client reads back from a document a Python function wrote with
// plain ints: fields the schema declares v.number() are JS numbers, v.int64()
// fields are BigInts. Prints one JSON line. Usage: node compat_numbers.mjs URL
import { ConvexClient } from "convex/browser";
import { anyApi } from "convex/server";
import WebSocket from "ws";

const [url] = process.argv.slice(2);
const client = new ConvexClient(url, { webSocketConstructor: WebSocket });
setTimeout(() => process.exit(2), 20000);
const describe = (x) =>
  Array.isArray(x)
    ? x.map(describe)
    : x !== null && typeof x === "object"
      ? Object.fromEntries(Object.entries(x).map(([k, y]) => [k, describe(y)]))
      : `${typeof x} ${String(x)}`;
const id = await client.mutation(anyApi.scores.add, {});
const added = await client.query(anyApi.scores.get, { id });
await client.mutation(anyApi.scores.bump, { id });
const bumped = await client.query(anyApi.scores.get, { id });
const pick = ({ score, count, either, history, extra }) => ({ score, count, either, history, extra });
// returns=v.number() with a Python int (len(...)), and an int argument under v.number()
const howMany = describe(await client.query(anyApi.scores.how_many, {}));
const twice = describe(await client.query(anyApi.scores.twice, { n: 21 }));
console.log(
  JSON.stringify({ added: describe(pick(added)), bumped: describe(pick(bumped)), howMany, twice }),
);
await client.close();
process.exit(0);
