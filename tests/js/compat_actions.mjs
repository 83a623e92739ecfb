// The official HTTP client calls an action and prints how the call ended as
// one JSON line ({"value": ...} or {"error": message}).
// Usage: node compat_actions.mjs URL PATH [ARGS_JSON]
import { ConvexHttpClient } from "convex/browser";
import { anyApi } from "convex/server";

const [url, path, args] = process.argv.slice(2);
setTimeout(() => process.exit(2), 60000);
const [module, name] = path.split(":");
const client = new ConvexHttpClient(url);
try {
  const value = await client.action(anyApi[module][name], JSON.parse(args ?? "{}"));
  console.log(JSON.stringify({ value }));
} catch (e) {
  console.log(JSON.stringify({ error: String(e.message ?? e) }));
}
process.exit(0);
