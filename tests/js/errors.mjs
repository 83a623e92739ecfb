// Calls failing functions with the official Convex JS clients (the HTTP
// client and the socket client) and prints what each client shows: one JSON
// line per call, for tests/integration/test_compat_errors.py.
// Usage: node errors.mjs URL QUERY|MUTATION|ACTION:PATH[:ARGS_JSON] ...
import { ConvexClient, ConvexHttpClient } from "convex/browser";
import { ConvexError } from "convex/values";
import WebSocket from "ws";

const [url, ...calls] = process.argv.slice(2);
const out = (event) =>
  console.log(
    JSON.stringify(event, (_k, v) => (typeof v === "bigint" ? `${v}n` : v)),
  );
const timer = setTimeout(() => {
  out({ event: "timeout" });
  process.exit(2);
}, 30000);

const http = new ConvexHttpClient(url);
const socket = new ConvexClient(url, { webSocketConstructor: WebSocket });
const clients = { http, socket };

for (const spec of calls) {
  const [kind, path, args] = spec.split("|");
  for (const [client, c] of Object.entries(clients)) {
    try {
      const value = await c[kind](path, args ? JSON.parse(args) : {});
      out({ event: "ok", client, path, value });
    } catch (e) {
      out({
        event: "error",
        client,
        path,
        message: e.message,
        name: e.name,
        convexError: e instanceof ConvexError,
        data: e.data,
      });
    }
  }
}
clearTimeout(timer);
await socket.close();
process.exit(0);
