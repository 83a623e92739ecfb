"""Files end to end (tests/integration/test_files_e2e.py): upload URLs, saved
ids, metadata, URLs, actions that store and read, deletes that commit or not."""

from runtime import action, mutation, query, v


@mutation(args={})
def upload_url(ctx, args):
    return ctx.storage.generate_upload_url()


@mutation(args={"storageId": v.id("_storage"), "name": v.string()})
def save(ctx, args):
    return ctx.db.insert("uploads", {"file": args["storageId"], "name": args["name"]})


@query(args={"name": v.string()})
def by_name(ctx, args):
    for upload in ctx.db.query("uploads").collect():
        if upload["name"] == args["name"]:
            return {
                "file": upload["file"],
                "url": ctx.storage.get_url(upload["file"]),
                "meta": ctx.db.system.get(upload["file"]),
                "metadata": ctx.storage.get_metadata(upload["file"]),
            }
    return None


@query(args={"storageId": v.id("_storage")})
def url(ctx, args):
    return ctx.storage.get_url(args["storageId"])


@mutation(args={"storageId": v.id("_storage"), "fail": v.boolean()})
def remove(ctx, args):
    ctx.storage.delete(args["storageId"])
    if args["fail"]:
        raise ValueError("rolled back on purpose")


@action(args={"text": v.string(), "contentType": v.string()})
def store_and_read(ctx, args):
    storage_id = ctx.storage.store(args["text"].encode(), args["contentType"])
    return {
        "storageId": storage_id,
        "back": ctx.storage.get(storage_id).decode(),
        "url": ctx.storage.get_url(storage_id),
        "metadata": ctx.storage.get_metadata(storage_id),
    }
