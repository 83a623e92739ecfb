// ConvexHttpClient.consistentQuery: every consistent query of one client
// reads the database at the timestamp its first one got from /api/query_ts,
// whatever another client writes in between. Also the client's other HTTP
// endpoints: /api/function (its `function` method) and an action's env.
// Prints one JSON line. Usage: node consistent.mjs URL
import { ConvexHttpClient } from "convex/browser";
import { anyApi } from "convex/server";

const [url] = process.argv.slice(2);
setTimeout(() => process.exit(2), 30000);
const api = anyApi;
const writer = new ConvexHttpClient(url, { logger: false });
const reader = new ConvexHttpClient(url, { logger: false });
const out = {};
const print = (x) =>
  console.log(JSON.stringify(x, (k, v) => (typeof v === "bigint" ? `${v}n` : v)));

const a = await writer.mutation(api.notes.add, { list: "l", body: "one" });
const b = await writer.mutation(api.notes.add, { list: "l", body: "two" });
try {
  out.first = await reader.consistentQuery(api.notes.in_list, { list: "l" });
} catch (e) {
  // The AWS shell refuses queries at a timestamp: report what the client shows.
  out.error = e.message;
  print(out);
  process.exit(0);
}
await writer.mutation(api.notes.edit, { id: a, body: "one!" });
await writer.mutation(api.notes.remove, { id: b });
await writer.mutation(api.notes.add, { list: "l", body: "three" });
await writer.mutation(api.notes.add, { list: "m", body: "elsewhere" });
await writer.mutation(api.notes.edit, { id: a, list: "m" });
out.again = await reader.consistentQuery(api.notes.in_list, { list: "l" });
out.body = await reader.consistentQuery(api.notes.body, { id: a });
out.gone = await reader.consistentQuery(api.notes.body, { id: b });
out.count = await reader.consistentQuery(api.notes.count, {});
out.latest = await reader.query(api.notes.in_list, { list: "l" });
const fresh = new ConvexHttpClient(url, { logger: false });
out.fresh = await fresh.consistentQuery(api.notes.in_list, { list: "l" });
out.freshCount = await fresh.consistentQuery(api.notes.count, {});
out.viaFunction = await writer.function(api.notes.count, undefined, {});
print(out);
process.exit(0);
