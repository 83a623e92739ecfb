"""A search served live: messages searched by body, filtered by channel."""

from runtime import mutation, pagination_opts_validator, query, v


@mutation(args={"body": v.string(), "channel": v.string()})
def send(ctx, args):
    return ctx.db.insert("messages", {"body": args["body"], "channel": args["channel"]})


@mutation(args={"id": v.id("messages"), "body": v.string()})
def edit(ctx, args):
    ctx.db.patch(args["id"], {"body": args["body"]})


@mutation(args={"id": v.id("messages")})
def remove(ctx, args):
    ctx.db.delete(args["id"])


@mutation(args={"body": v.string(), "channel": v.string(), "text": v.string()})
def send_and_search(ctx, args):
    """Read-your-writes: the search sees the message this mutation inserted."""
    ctx.db.insert("messages", {"body": args["body"], "channel": args["channel"]})
    found = (
        ctx.db.query("messages")
        .with_search_index(
            "search_body", lambda q: q.search("body", args["text"]).eq("channel", args["channel"])
        )
        .collect()
    )
    return [m["body"] for m in found]


@query(args={"text": v.string(), "channel": v.optional(v.string())})
def search(ctx, args):
    def build(q):
        q = q.search("body", args["text"])
        return q.eq("channel", args["channel"]) if "channel" in args else q

    found = ctx.db.query("messages").with_search_index("search_body", build).take(10)
    return [m["body"] for m in found]


@query(args={"text": v.string(), "paginationOpts": pagination_opts_validator})
def page(ctx, args):
    return (
        ctx.db.query("messages")
        .with_search_index("search_body", lambda q: q.search("body", args["text"]))
        .paginate(args["paginationOpts"])
    )
