"""HTTP actions that fail (Convex's `failer` and `failer_custom`)."""

from runtime import ConvexError, HttpRouter, http_action

http = HttpRouter()


@http_action
async def failer(ctx, request):
    raise ValueError("Oh no!")


@http_action
def failer_custom(ctx, request):
    raise ConvexError("Hello world!")


@http_action
async def failer_nested(ctx, request):
    return await ctx.run_query("custom_errors:query_throwing_convex_error_subclass")


http.route(path="/failer", method="GET", handler=failer)
http.route(path="/failer_custom", method="GET", handler=failer_custom)
http.route(path="/failer_nested", method="GET", handler=failer_nested)
