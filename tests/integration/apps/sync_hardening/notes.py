"""Functions for the sync hardening tests: log lines, big results, slow actions."""

import os
import time

from runtime import action, mutation, query, v


@query(args={"topic": v.string()})
def listed(ctx, args):
    print("listed ran")
    rows = ctx.db.query("notes").with_index("by_topic", lambda q: q.eq("topic", args["topic"]))
    return [n["body"] for n in rows.collect()]


@query(args={"topic": v.string(), "size": v.float64()})
def big(ctx, args):
    """A result of `size` characters that changes with every note on the topic."""
    rows = ctx.db.query("notes").with_index("by_topic", lambda q: q.eq("topic", args["topic"]))
    count = len(rows.collect())
    return str(count) + "x" * int(args["size"])


@mutation(args={"topic": v.string(), "body": v.string()})
def add(ctx, args):
    print("add ran")
    return ctx.db.insert("notes", {"topic": args["topic"], "body": args["body"]})


@action(args={})
def shout(ctx, args):
    print("shout ran")
    return "shouted"


@action(args={"folder": v.string(), "name": v.string()})
def wait_for_gate(ctx, args):
    """Mark itself started (a file `started-<name>`), then sleep until the
    test creates `gate` in the folder (bounded: 120 s)."""
    folder = args["folder"]
    with open(os.path.join(folder, "started-" + args["name"]), "w") as f:
        f.write("")
    deadline = time.monotonic() + 120
    while not os.path.exists(os.path.join(folder, "gate")):
        if time.monotonic() > deadline:
            return "gate never opened"
        time.sleep(0.01)
    return "released"
