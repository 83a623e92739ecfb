"""The example app: accounts and transfers (functions "bank:open", "bank:balance", ...)."""

import os

from runtime import ConvexError, action, internal_mutation, mutation, query, v


@mutation(args={"owner": v.string()}, returns=v.id("accounts"))
def open(ctx, args):  # shadows the builtin on purpose: the export name is "bank:open"
    return ctx.db.insert("accounts", {"owner": args["owner"], "balance": 0})


def _account(ctx, owner):
    acct = ctx.db.query("accounts").with_index("by_owner", lambda q: q.eq("owner", owner)).unique()
    if acct is None:
        raise ConvexError({"code": "NO_ACCOUNT", "owner": owner})
    return acct


@query(args={"owner": v.string()})
def balance(ctx, args):
    return _account(ctx, args["owner"])["balance"]


@mutation(args={"owner": v.string(), "amount": v.int64()})
def deposit(ctx, args):
    acct = _account(ctx, args["owner"])
    ctx.db.patch(acct["_id"], {"balance": acct["balance"] + args["amount"]})


@mutation(args={"source": v.string(), "target": v.string(), "amount": v.int64()})
def transfer(ctx, args):
    if args["amount"] <= 0:
        raise ConvexError({"code": "BAD_AMOUNT"})
    src, dst = _account(ctx, args["source"]), _account(ctx, args["target"])
    if src["balance"] < args["amount"]:
        raise ConvexError({"code": "INSUFFICIENT_FUNDS", "balance": src["balance"]})
    ctx.db.patch(src["_id"], {"balance": src["balance"] - args["amount"]})
    ctx.db.patch(dst["_id"], {"balance": dst["balance"] + args["amount"]})


@query(args={})
def total(ctx, args):
    return sum(a["balance"] for a in ctx.db.query("accounts").collect())


@internal_mutation(args={"owner": v.string()})
def close(ctx, args):
    ctx.db.delete(_account(ctx, args["owner"])["_id"])


@action(args={})
def audit(ctx, args):
    return ctx.run_query("bank:total", {})


@query(args={})
def info(ctx, args):
    """The bank's name comes from an environment variable: `pyconvex env set BANK_NAME ...`."""
    return {
        "name": os.environ.get("BANK_NAME", "Example Bank"),
        "accounts": len(ctx.db.query("accounts").collect()),
    }
