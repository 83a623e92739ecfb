"""Housekeeping the example app's cron runs (functions/crons.py)."""

import time

from runtime import internal_mutation, v

MESSAGE_RETENTION_DAYS = 30
TRIM_BATCH = 100


@internal_mutation(args={"days": v.optional(v.number())})
def trim_messages(ctx, args):
    """Delete messages older than `days` (30), the oldest first, at most
    TRIM_BATCH per run (the cron runs again soon), with their image files.
    Returns how many were deleted."""
    days = args.get("days", MESSAGE_RETENTION_DAYS)
    cutoff = (time.time() - days * 86_400) * 1000
    deleted = 0
    for message in ctx.db.query("messages").order("asc").take(TRIM_BATCH):
        if message["_creationTime"] >= cutoff:
            break
        if message["format"] == "image":
            ctx.storage.delete(message["body"])
        ctx.db.delete(message["_id"])
        deleted += 1
    return deleted
