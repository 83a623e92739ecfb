"""Actions call queries, mutations and actions, internal ones included."""

import asyncio

from runtime import action, internal_action, v

from . import items


@action(args={"name": v.string()})
async def add_async(ctx, args):
    first, second = await asyncio.gather(
        ctx.run_mutation(items.secret_add, {"name": args["name"] + "-1"}),
        ctx.run_mutation("items:secret_add", {"name": args["name"] + "-2"}),
    )
    return {"ids": [first, second], "count": await ctx.run_query("items:secret_count", {})}


@action(args={"name": v.string()})
def add_sync(ctx, args):
    ctx.run_mutation(items.secret_add, {"name": args["name"]})
    return ctx.run_action("actions:inner", {"x": 2.0})


@internal_action(args={"x": v.float64()})
def inner(ctx, args):
    print("inner action ran")
    return args["x"] * 21


@action
def catches(ctx, args):
    from runtime import ConvexError

    try:
        ctx.run_mutation("items:write_then_convex_error", {"name": "caught"})
    except ConvexError as e:
        return {"caught": e.data}
    return None
