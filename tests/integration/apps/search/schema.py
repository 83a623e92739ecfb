from runtime import define_schema, define_table, v

schema = define_schema(
    {
        "messages": define_table({"body": v.string(), "channel": v.string()}).search_index(
            "search_body", search_field="body", filter_fields=["channel"]
        ),
    }
)
