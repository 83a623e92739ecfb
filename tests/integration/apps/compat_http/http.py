import os

from starlette.responses import JSONResponse

from runtime import HttpRouter, http_action

http = HttpRouter()


@http_action
async def urls(ctx, request):
    return JSONResponse({n: os.environ.get(n) for n in ("CONVEX_CLOUD_URL", "CONVEX_SITE_URL")})


http.route(path="/urls", method="GET", handler=urls)
