"""Python ints written where the schema says v.number() (stored as float64)."""

from runtime import mutation, query, v


@mutation(args={})
def add(ctx, args):
    return ctx.db.insert(
        "scores", {"score": 0, "count": 3, "either": 5, "history": [1, 2.5], "extra": {"weight": 2}}
    )


@mutation(args={"id": v.id("scores")})
def bump(ctx, args):
    ctx.db.patch(args["id"], {"score": 7, "history": [4]})


@query(args={"id": v.id("scores")})
def get(ctx, args):
    return ctx.db.get(args["id"])


@query(args={}, returns=v.number())
def how_many(ctx, args):
    # A plain `len(...)` under `returns=v.number()`: clients read a number.
    return len(ctx.db.query("scores").collect())


@query(args={"n": v.number()}, returns=v.number())
def twice(ctx, args):
    return args["n"] * 2
