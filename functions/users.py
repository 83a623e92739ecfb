"""The users pattern of Convex's "Storing Users in the Convex Database": a
signed-in client calls `users:store` once after login, and functions find
the caller's document by `tokenIdentifier` (functions "users:store",
"users:me", "users:whoami", "users:whoami_in_action")."""

from runtime import ConvexError, action, mutation, query


@mutation(args={})
def store(ctx, args):
    """The caller's users document id, made on first call; the name follows the token's."""
    identity = ctx.auth.get_user_identity()
    if identity is None:
        raise ConvexError("Called users:store without authentication present")
    user = (
        ctx.db.query("users")
        .with_index("by_token", lambda q: q.eq("tokenIdentifier", identity["tokenIdentifier"]))
        .unique()
    )
    name = identity.get("name", "")
    if user is not None:
        if user["name"] != name:
            ctx.db.patch(user["_id"], {"name": name})
        return user["_id"]
    return ctx.db.insert("users", {"name": name, "tokenIdentifier": identity["tokenIdentifier"]})


@query(args={})
def me(ctx, args):
    """The caller's users document (None: anonymous, or not stored yet)."""
    identity = ctx.auth.get_user_identity()
    if identity is None:
        return None
    return (
        ctx.db.query("users")
        .with_index("by_token", lambda q: q.eq("tokenIdentifier", identity["tokenIdentifier"]))
        .unique()
    )


@query(args={})
def whoami(ctx, args):
    """The caller's identity as `get_user_identity()` returns it (None: anonymous)."""
    return ctx.auth.get_user_identity()


@action(args={})
def whoami_in_action(ctx, args):
    """An action hands its caller's identity to the functions it runs."""
    return {"action": ctx.auth.get_user_identity(), "query": ctx.run_query("users:whoami", {})}
