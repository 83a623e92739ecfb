from runtime import define_schema, define_table, v

schema = define_schema(
    {
        "messages": define_table({"channel": v.string(), "body": v.string()}).index(
            "by_channel", ["channel"]
        ),
        "counters": define_table({"n": v.float64()}),
        "ranked": define_table({"rank": v.float64()}).index("by_rank", ["rank"]),
    }
)
