"""A paginated list with an optional filter (tests of Convex's pagination options)."""

from runtime import mutation, query, v

# Convex's paginationOptsValidator, field for field.
PAGINATION_OPTS = v.object(
    {
        "numItems": v.number(),
        "cursor": v.union(v.string(), v.null()),
        "endCursor": v.optional(v.union(v.string(), v.null())),
        "id": v.optional(v.number()),
        "maximumRowsRead": v.optional(v.number()),
        "maximumBytesRead": v.optional(v.number()),
    }
)


@query(args={"paginationOpts": PAGINATION_OPTS, "tag": v.optional(v.string())})
def page(ctx, args):
    q = ctx.db.query("items").with_index("by_n")
    if "tag" in args:
        q = q.filter(lambda f: f.eq(f.field("tag"), args["tag"]))
    return q.paginate(args["paginationOpts"])


@mutation(args={"n": v.number(), "tag": v.optional(v.string())})
def add(ctx, args):
    return ctx.db.insert("items", {"n": args["n"], "tag": args.get("tag", "")})
