"""A paginated list ordered by an indexed field (reactive pagination)."""

from runtime import mutation, query, v


@query(args={"paginationOpts": v.any()})
def page(ctx, args):
    return ctx.db.query("ranked").with_index("by_rank").paginate(args["paginationOpts"])


@mutation(args={"rank": v.float64()})
def add(ctx, args):
    return ctx.db.insert("ranked", {"rank": args["rank"]})


@mutation(args={"rank": v.float64()})
def remove(ctx, args):
    doc = ctx.db.query("ranked").with_index("by_rank", lambda q: q.eq("rank", args["rank"])).first()
    ctx.db.delete(doc["_id"])
