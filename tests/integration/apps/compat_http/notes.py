"""Notes in lists: what a consistent query reads, what mutations change."""

from runtime import mutation, query, v


@mutation(args={"list": v.string(), "body": v.string()})
def add(ctx, args):
    return ctx.db.insert("notes", {"list": args["list"], "body": args["body"]})


@mutation(
    args={"id": v.id("notes"), "list": v.optional(v.string()), "body": v.optional(v.string())}
)
def edit(ctx, args):
    ctx.db.patch(args["id"], {k: args[k] for k in ("list", "body") if k in args})


@mutation(args={"id": v.id("notes")})
def remove(ctx, args):
    ctx.db.delete(args["id"])


@query(args={"list": v.string()})
def in_list(ctx, args):
    q = ctx.db.query("notes").with_index("by_list", lambda q: q.eq("list", args["list"]))
    return [n["body"] for n in q.collect()]


@query(args={"id": v.id("notes")})
def body(ctx, args):
    note = ctx.db.get(args["id"])
    return None if note is None else note["body"]


@query(args={})
def count(ctx, args):
    return len(ctx.db.query("notes").collect())
