"""HTTP actions with files: store a request's body, serve a stored file."""

from starlette.responses import JSONResponse, PlainTextResponse, Response

from runtime import HttpRouter, http_action


@http_action
async def store(ctx, request):
    storage_id = await ctx.storage.store(await request.body(), request.headers.get("content-type"))
    return JSONResponse({"storageId": storage_id})


@http_action
def serve(ctx, request):
    storage_id = request.query_params.get("id", "")
    metadata = ctx.storage.get_metadata(storage_id)
    data = ctx.storage.get(storage_id)
    if metadata is None or data is None:
        return PlainTextResponse("no such file", status_code=404)
    return Response(data, media_type=metadata["contentType"] or "application/octet-stream")


http = HttpRouter()
http.route(path="/store", method="POST", handler=store)
http.route(path="/serve", method="GET", handler=serve)
