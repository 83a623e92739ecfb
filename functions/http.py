"""HTTP actions of the example app, served on the site port (127.0.0.1:3211).

curl 'http://127.0.0.1:3211/balance?owner=ann'
curl -X POST http://127.0.0.1:3211/deposit -d '{"owner": "ann", "amount": 5}'
curl -H "Authorization: Bearer $JWT" http://127.0.0.1:3211/whoami
"""

from starlette.requests import Request
from starlette.responses import JSONResponse

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


http.route(path="/whoami", method="GET", handler=whoami)
http.route(path="/balance", method="GET", handler=balance)
http.route(path="/deposit", method="POST", handler=deposit)
