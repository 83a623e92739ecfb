"""The network: refused in queries and mutations, open in actions."""

import socket

from runtime import action, mutation, query, v


def _connect(port):
    with socket.create_connection(("127.0.0.1", int(port)), timeout=2):
        return True


@query(args={"port": v.float64()})
def from_query(ctx, args):
    return _connect(args["port"])


@mutation(args={"port": v.float64()})
def from_mutation(ctx, args):
    ctx.db.insert("items", {"name": "should not be written"})
    return _connect(args["port"])


@action(args={"port": v.float64()})
def from_action(ctx, args):
    return _connect(args["port"])
