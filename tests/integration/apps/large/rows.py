"""Mutations past one DynamoDB transaction, and a query over the range they change."""

from runtime import mutation, query, v


@mutation(args={"batch": v.string(), "count": v.number(), "first": v.optional(v.number())})
def insert_many(ctx, args):
    first = int(args.get("first", 0))
    for n in range(first, first + int(args["count"])):
        ctx.db.insert("rows", {"batch": args["batch"], "n": n})


@mutation(args={"batch": v.string()})
def delete_all(ctx, args):
    rows = ctx.db.query("rows").with_index("by_batch", lambda q: q.eq("batch", args["batch"]))
    for row in rows.collect():
        ctx.db.delete(row["_id"])


@query(args={"batch": v.string()})
def summary(ctx, args):
    rows = (
        ctx.db.query("rows")
        .with_index("by_batch", lambda q: q.eq("batch", args["batch"]))
        .collect()
    )
    return {"count": len(rows), "total": sum(r["n"] for r in rows)}
