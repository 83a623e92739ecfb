"""Transfers between shared accounts: conflicting mutations, some on the
event loop and some in workers."""

from runtime import mutation, query, v


def _account(ctx, owner):
    return ctx.db.query("accounts").with_index("by_owner", lambda q: q.eq("owner", owner)).unique()


@mutation(args={"owner": v.string(), "balance": v.int64()})
def open(ctx, args):  # shadows the builtin: the export name is "bank:open"
    ctx.db.insert("accounts", {"owner": args["owner"], "balance": args["balance"]})


@mutation(args={"source": v.string(), "target": v.string(), "amount": v.int64()})
def transfer(ctx, args):
    src, dst = _account(ctx, args["source"]), _account(ctx, args["target"])
    ctx.db.patch(src["_id"], {"balance": src["balance"] - args["amount"]})
    ctx.db.patch(dst["_id"], {"balance": dst["balance"] + args["amount"]})


@query(args={})
def balances(ctx, args):
    return {a["owner"]: a["balance"] for a in ctx.db.query("accounts").collect()}
