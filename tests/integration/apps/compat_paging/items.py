"""A paginated list with an optional filter (tests of Convex's pagination options)."""

from runtime import mutation, pagination_opts_validator, query, v


@query(args={"paginationOpts": pagination_opts_validator, "tag": v.optional(v.string())})
def page(ctx, args):
    q = ctx.db.query("items").with_index("by_n")
    if "tag" in args:
        q = q.filter(lambda f: f.eq(f.field("tag"), args["tag"]))
    return q.paginate(args["paginationOpts"])


@mutation(args={"n": v.number(), "tag": v.optional(v.string())})
def add(ctx, args):
    return ctx.db.insert("items", {"n": args["n"], "tag": args.get("tag", "")})
