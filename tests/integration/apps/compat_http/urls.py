"""The built-in URL variables, as each kind of function sees them."""

import os

from runtime import action, mutation, query


def _urls():
    return {n: os.environ.get(n) for n in ("CONVEX_CLOUD_URL", "CONVEX_SITE_URL")}


@query(args={})
def in_query(ctx, args):
    return _urls()


@mutation(args={})
def in_mutation(ctx, args):
    return _urls()


@action(args={})
def in_action(ctx, args):
    return _urls()
