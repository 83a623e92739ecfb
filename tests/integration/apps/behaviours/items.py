import logging

from runtime import ConvexError, internal_mutation, internal_query, mutation, query, v

log = logging.getLogger(__name__)


@mutation(args={"name": v.string()}, returns=v.id("items"))
def add(ctx, args):
    return ctx.db.insert("items", {"name": args["name"]})


@query(args={})
def count(ctx, args):
    return len(ctx.db.query("items").collect())


@query(args={"name": v.string()})
def by_name(ctx, args):
    return (
        ctx.db.query("items").with_index("by_name", lambda q: q.eq("name", args["name"])).collect()
    )


@mutation(args={"id": v.id("items"), "tags": v.array(v.string()), "n": v.int64()})
def typed(ctx, args):
    ctx.db.patch(args["id"], {"n": float(args["n"])})
    return len(args["tags"])


@mutation
def untyped(ctx, args):
    return sorted(args)


@internal_mutation(args={"name": v.string()})
def secret_add(ctx, args):
    return ctx.db.insert("items", {"name": args["name"]})


@internal_query(args={})
def secret_count(ctx, args):
    return len(ctx.db.query("items").collect())


@mutation(args={"name": v.string()})
def chatty(ctx, args):
    print("adding", args["name"])
    print("second line")
    log.info("info about %s", args["name"])
    log.warning("careful")
    return ctx.db.insert("items", {"name": args["name"]})


@query
def boom(ctx, args):
    raise ValueError("kaput")


@mutation(args={"name": v.string()})
def write_then_boom(ctx, args):
    ctx.db.insert("items", {"name": args["name"]})
    raise RuntimeError("after the write")


@mutation(args={"name": v.string()})
def write_then_convex_error(ctx, args):
    ctx.db.insert("items", {"name": args["name"]})
    raise ConvexError({"code": "NOPE", "name": args["name"]})


@mutation(args={"name": v.string()}, returns=v.string())
def bad_return(ctx, args):
    ctx.db.insert("items", {"name": args["name"]})
    return 5


@query
def not_a_value(ctx, args):
    return {1, 2}


@query
def big(ctx, args):
    return "x" * (17 << 20)
