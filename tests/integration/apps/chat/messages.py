from runtime import action, internal_query, mutation, query, v


@mutation(args={"channel": v.string(), "body": v.string()})
def send(ctx, args):
    return ctx.db.insert("messages", {"channel": args["channel"], "body": args["body"]})


@query(args={"channel": v.string()})
def list(ctx, args):
    rows = ctx.db.query("messages").with_index(
        "by_channel", lambda q: q.eq("channel", args["channel"])
    )
    return [m["body"] for m in rows.collect()]


@query(args={"channel": v.string(), "n": v.float64()})
def latest(ctx, args):
    rows = ctx.db.query("messages").with_index(
        "by_channel", lambda q: q.eq("channel", args["channel"])
    )
    return [m["body"] for m in rows.order("desc").take(int(args["n"]))]


@query(args={})
def count_all(ctx, args):
    return len(ctx.db.query("messages").collect())


@query(args={"id": v.id("counters")})
def counter(ctx, args):
    doc = ctx.db.get(args["id"])
    return None if doc is None else doc["n"]


@mutation(args={})
def new_counter(ctx, args):
    return ctx.db.insert("counters", {"n": 0.0})


@mutation(args={"id": v.id("counters")})
def bump(ctx, args):
    ctx.db.patch(args["id"], {"n": ctx.db.get(args["id"])["n"] + 1})


@query(args={})
def boom(ctx, args):
    raise ValueError("query failed")


@internal_query(args={})
def hidden(ctx, args):
    return "hidden"


@action(args={"channel": v.string()})
def echo_count(ctx, args):
    return len(ctx.run_query("messages:list", {"channel": args["channel"]}))
