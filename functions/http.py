"""HTTP actions of the example app, served on the site port (127.0.0.1:3211).

curl 'http://127.0.0.1:3211/balance?owner=ann'
curl -X POST http://127.0.0.1:3211/deposit -d '{"owner": "ann", "amount": 5}'
curl -H "Authorization: Bearer $JWT" http://127.0.0.1:3211/whoami
curl -X POST 'http://127.0.0.1:3211/sendImage?author=ann' -H 'Content-Type: image/png' --data-binary @cat.png
curl 'http://127.0.0.1:3211/getImage?storageId=<id>' -o cat.png
"""

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from runtime import HttpRouter, http_action

http = HttpRouter()


@http_action
async def balance(ctx, request: Request):
    owner = request.query_params.get("owner")
    if not owner:
        return JSONResponse({"error": "pass ?owner=..."}, status_code=400)
    return JSONResponse(
        {"owner": owner, "balance": await ctx.run_query("bank:balance", {"owner": owner})}
    )


@http_action
async def deposit(ctx, request: Request):
    body = await request.json()
    # JSON numbers arrive as floats; the bank counts whole units (int64).
    await ctx.run_mutation("bank:deposit", {"owner": body["owner"], "amount": int(body["amount"])})
    return JSONResponse({"ok": True})


@http_action
async def whoami(ctx, request: Request):
    # `Authorization: Bearer <jwt>` on the request: the caller's identity (None: anonymous)
    return JSONResponse({"identity": ctx.auth.get_user_identity()})


@http_action
async def send_image(ctx, request: Request):
    # Store the request's body as a file, then save its id in a message.
    storage_id = await ctx.storage.store(await request.body(), request.headers.get("content-type"))
    author = request.query_params.get("author", "anonymous")
    await ctx.run_mutation("messages:save_image", {"storageId": storage_id, "author": author})
    return JSONResponse({"storageId": storage_id})


@http_action
async def get_image(ctx, request: Request):
    # Serve a file through an HTTP action (access could be checked here).
    storage_id = request.query_params.get("storageId", "")
    metadata = await ctx.storage.get_metadata(storage_id)
    data = await ctx.storage.get(storage_id)
    if metadata is None or data is None:
        return PlainTextResponse("Image not found", status_code=404)
    return Response(data, media_type=metadata["contentType"] or "application/octet-stream")


http.route(path="/sendImage", method="POST", handler=send_image)
http.route(path="/getImage", method="GET", handler=get_image)
http.route(path="/whoami", method="GET", handler=whoami)
http.route(path="/balance", method="GET", handler=balance)
http.route(path="/deposit", method="POST", handler=deposit)
