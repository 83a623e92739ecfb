"""The benchmark app: counters bumped by mutations over HTTP."""

from runtime import mutation, query, v


@mutation(args={"count": v.float64()})
def create(ctx, args):
    return [ctx.db.insert("counters", {"n": 0}) for _ in range(int(args["count"]))]


@mutation(args={"id": v.id("counters")})
def bump(ctx, args):
    doc = ctx.db.get(args["id"])
    ctx.db.patch(args["id"], {"n": doc["n"] + 1})


@query(args={"ids": v.array(v.id("counters"))})
def total(ctx, args):
    return sum(ctx.db.get(i)["n"] for i in args["ids"])
