"""Functions that fail in each way Convex's own error tests exercise
(`customErrors` in Convex's js-integration-tests), ported to Python."""

from runtime import (
    ConvexError,
    FunctionCallError,
    action,
    internal_query,
    mutation,
    query,
    v,
)


class FooError(ConvexError):
    pass


BOOM = {"message": "Boom boom bop", "code": 123}  # an int is an int64: "123n"


@query
def query_throwing_convex_error(ctx, args):
    raise ConvexError("Boom boom bop")


@query
def query_throwing_normal_error(ctx, args):
    raise ValueError("Normal error")


@query
def query_throwing_convex_error_subclass(ctx, args):
    raise FooError(BOOM)


@mutation
def mutation_throwing_convex_error(ctx, args):
    raise ConvexError(BOOM)


@action
def action_throwing_convex_error(ctx, args):
    raise ConvexError("Boom boom bop")


@action
def action_calling_query_throwing_convex_error(ctx, args):
    return ctx.run_query("custom_errors:query_throwing_convex_error")


@action
async def action_calling_query_throwing_convex_error_subclass(ctx, args):
    return await ctx.run_query("custom_errors:query_throwing_convex_error_subclass")


@action
def action_calling_mutation_throwing_convex_error(ctx, args):
    return ctx.run_mutation("custom_errors:mutation_throwing_convex_error")


@action
async def action_calling_action_throwing_convex_error(ctx, args):
    return await ctx.run_action("custom_errors:action_throwing_convex_error")


@action
def action_calling_query_throwing_normal_error(ctx, args):
    return ctx.run_query("custom_errors:query_throwing_normal_error")


@action
def action_catching(ctx, args):
    """What the calling action can read from the errors it catches."""
    caught = {}
    try:
        ctx.run_query("custom_errors:query_throwing_convex_error_subclass")
    except ConvexError as e:
        caught["convex"] = {"type": type(e).__name__, "data": e.data, "message": str(e)}
    try:
        ctx.run_query("custom_errors:query_throwing_normal_error")
    except FunctionCallError as e:
        caught["other"] = {"type": type(e).__name__, "message": str(e)}
    try:
        ctx.run_query("custom_errors:nope")
    except Exception as e:
        caught["missing"] = {"type": type(e).__name__, "message": str(e)}
    return caught


@internal_query
def hidden(ctx, args):
    raise FooError("hidden boom")


@query(args={"a": v.string()})
def takes_a_string(ctx, args):
    return args["a"]


@query(args={"a": v.string()}, returns=v.string())
def returns_a_number(ctx, args):
    return 1.5
