"""The chat's tables: messages (text or image, searchable by body) and likes.

A like is its own document, not a counter on the message: two people liking
the same message at once write different documents, so neither mutation
conflicts with the other, and `by_message` finds a message's likes.
"""

from runtime import define_schema, define_table, v

schema = define_schema(
    {
        "messages": define_table(
            {
                "author": v.string(),
                "body": v.string(),
                "format": v.union(v.literal("text"), v.literal("image")),
                "storageId": v.optional(v.id("_storage")),
            }
        ).search_index("search_body", search_field="body", filter_fields=["author"]),
        "likes": define_table({"messageId": v.id("messages"), "liker": v.string()})
        .index("by_message", ["messageId"])
        .index("by_message_liker", ["messageId", "liker"]),
    }
)
