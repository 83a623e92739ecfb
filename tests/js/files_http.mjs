// File storage with the official JS client, as the seed's upload example does
// it: ConvexHttpClient mutation -> fetch POST the file -> mutation saving the
// id -> query get_url -> fetch the bytes; then HTTP actions that store a
// request's body and serve a stored file. Prints one JSON line.
// Usage: node files_http.mjs URL SITE_URL
import { ConvexHttpClient } from "convex/browser";
import { anyApi } from "convex/server";

const [url, siteUrl] = process.argv.slice(2);
setTimeout(() => process.exit(2), 30000);
const api = anyApi;
const client = new ConvexHttpClient(url, { logger: false });
const bytes = new Uint8Array(3000).map((_, i) => (i * 7 + 3) % 256);
const same = (buffer) => Buffer.from(buffer).equals(Buffer.from(bytes));
const out = {};

const postUrl = await client.mutation(api.files.upload_url, {});
const result = await fetch(postUrl, {
  method: "POST",
  headers: { "Content-Type": "image/png" },
  body: new Blob([bytes], { type: "image/png" }),
});
out.uploadStatus = result.status;
const { storageId } = await result.json();
await client.mutation(api.files.save, { storageId, name: "from-js" });
const found = await client.query(api.files.by_name, { name: "from-js" });
out.sameId = found.file === storageId;
// size is an int64 here (a BigInt in JS); Convex's FileMetadata types it `number`.
out.size = Number(found.metadata.size);
out.contentType = found.metadata.contentType;
const got = await fetch(found.url);
out.getStatus = got.status;
out.getType = got.headers.get("content-type");
out.sameBytes = same(await got.arrayBuffer());

const stored = await fetch(`${siteUrl}/store`, {
  method: "POST",
  headers: { "Content-Type": "application/x-test" },
  body: bytes,
});
out.actionStoreStatus = stored.status;
const { storageId: actionId } = await stored.json();
const served = await fetch(`${siteUrl}/serve?id=${actionId}`);
out.actionServeStatus = served.status;
out.actionType = served.headers.get("content-type");
out.actionSameBytes = same(await served.arrayBuffer());
out.actionFileHasUrl = (await client.query(api.files.url, { storageId: actionId })) !== null;
console.log(JSON.stringify(out));
process.exit(0);
