"""Messages: send, like, images through file storage, paginated history, search.

The web client (../web) calls these through the generated `api` object:
`api.messages.list` with `usePaginatedQuery`, `api.messages.send` with
`useMutation`, and so on. Every result message carries what the page shows:
its like count, who liked it, and for an image its URL.
"""

from runtime import mutation, pagination_opts_validator, query, v

ASSISTANT_MENTION = "@assistant"
"""A message that mentions this gets a reply from assistant:reply."""


def _author(ctx, given):
    """The signed-in user's name when there is one (sign-in is optional and
    off by default), else the name the client typed."""
    identity = ctx.auth.get_user_identity()
    if identity is not None and identity.get("name"):
        return identity["name"]
    return given


def _shown(ctx, message):
    """The message as the page shows it: with its likes and, for an image, its URL."""
    likes = (
        ctx.db.query("likes")
        .with_index("by_message", lambda q: q.eq("messageId", message["_id"]))
        .collect()
    )
    message["likes"] = float(len(likes))
    message["likers"] = sorted({like["liker"] for like in likes})
    if message["format"] == "image" and "storageId" in message:
        message["url"] = ctx.storage.get_url(message["storageId"])
    return message


@query(args={"paginationOpts": pagination_opts_validator})
def list(ctx, args):
    """Newest first, a page at a time (`usePaginatedQuery` asks for more on scroll)."""
    result = ctx.db.query("messages").order("desc").paginate(args["paginationOpts"])
    result["page"] = [_shown(ctx, m) for m in result["page"]]
    return result


@mutation(args={"body": v.string(), "author": v.string()})
def send(ctx, args):
    """Insert a text message; one that mentions @assistant schedules a reply,
    which runs only if this mutation commits."""
    body = args["body"].strip()
    if not body:
        return None
    message_id = ctx.db.insert(
        "messages", {"body": body, "author": _author(ctx, args["author"]), "format": "text"}
    )
    if ASSISTANT_MENTION in body.lower():
        ctx.scheduler.run_after(0, "assistant:reply", {"question": body})
    return message_id


@mutation(args={"messageId": v.id("messages"), "liker": v.string()})
def like(ctx, args):
    """Like a message, or take the like back when this person already liked it."""
    liker = _author(ctx, args["liker"])
    existing = (
        ctx.db.query("likes")
        .with_index(
            "by_message_liker",
            lambda q: q.eq("messageId", args["messageId"]).eq("liker", liker),
        )
        .first()
    )
    if existing is not None:
        ctx.db.delete(existing["_id"])
        return False
    ctx.db.insert("likes", {"messageId": args["messageId"], "liker": liker})
    return True


@mutation(args={})
def generate_upload_url(ctx, args):
    """A short-lived URL the browser POSTs the image to; it answers with the storage id."""
    return ctx.storage.generate_upload_url()


@mutation(args={"storageId": v.id("_storage"), "author": v.string()})
def send_image(ctx, args):
    """Save an uploaded image as a message (its body is what search sees)."""
    return ctx.db.insert(
        "messages",
        {
            "body": "(image)",
            "author": _author(ctx, args["author"]),
            "format": "image",
            "storageId": args["storageId"],
        },
    )


@query(args={"text": v.string()})
def search(ctx, args):
    """Messages whose body matches the words, best match first (at most 20)."""
    if not args["text"].strip():
        return []
    found = (
        ctx.db.query("messages")
        .with_search_index("search_body", lambda q: q.search("body", args["text"]))
        .take(20)
    )
    return [_shown(ctx, m) for m in found]
