"""Actions that nest: calls with no end (Convex's 'deadlock' family), a
recursion that ends, and actions that never finish (for stopping the server)."""

import asyncio
import threading
from pathlib import Path

from runtime import action, v


@action
def self_call(ctx, args):
    return ctx.run_action("loops:self_call", {})


@action
async def ping(ctx, args):
    return await ctx.run_action("loops:pong", {})


@action
def pong(ctx, args):
    return ctx.run_action("loops:ping", {})


@action(args={"n": v.float64()})
async def count_down(ctx, args):
    if args["n"] <= 0:
        return 0.0
    return 1 + await ctx.run_action("loops:count_down", {"n": args["n"] - 1})


@action(args={"marker": v.string()})
def stuck(ctx, args):
    """Says it started (a file the test waits for), then never finishes."""
    Path(args["marker"]).write_text("started")
    threading.Event().wait()


@action(args={"marker": v.string()})
async def stuck_below(ctx, args):
    """An async action waiting for a stuck nested one (on a worker thread of
    its event loop, which the interpreter would wait for at exit)."""
    await asyncio.sleep(0)
    return await ctx.run_action("loops:stuck", {"marker": args["marker"]})
