"""Messages with images: the seed's file storage example, in Python.

A client asks `generate_upload_url` for a URL, POSTs the image to it (with
its Content-Type), then saves the returned storage id with `send_image`.
`list` hands each image message its URL, for an `<img src>`; HTTP actions in
http.py store and serve images too (`/sendImage`, `/getImage`).
"""

from runtime import internal_mutation, mutation, query, v


@mutation(args={})
def generate_upload_url(ctx, args):
    # Who may upload is decided here: check ctx.auth before handing out a URL.
    return ctx.storage.generate_upload_url()


@mutation(args={"storageId": v.id("_storage"), "author": v.string()})
def send_image(ctx, args):
    ctx.db.insert(
        "messages", {"body": args["storageId"], "author": args["author"], "format": "image"}
    )


@internal_mutation(args={"storageId": v.id("_storage"), "author": v.string()})
def save_image(ctx, args):
    send_image.handler(ctx, args)


@mutation(args={"body": v.string(), "author": v.string()})
def send(ctx, args):
    ctx.db.insert("messages", {"body": args["body"], "author": args["author"], "format": "text"})


@query(args={})
def list(ctx, args):
    messages = ctx.db.query("messages").order("desc").take(50)
    for message in messages:
        if message["format"] == "image":
            message["url"] = ctx.storage.get_url(message["body"])
    return messages


@mutation(args={"id": v.id("messages")})
def remove(ctx, args):
    """Delete a message and, for an image, its file (only if this commits)."""
    message = ctx.db.get(args["id"])
    if message is None:
        return
    if message["format"] == "image":
        ctx.storage.delete(message["body"])
    ctx.db.delete(args["id"])
