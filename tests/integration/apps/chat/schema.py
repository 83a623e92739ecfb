from runtime import define_schema, define_table, v

schema = define_schema(
    {
        "messages": define_table({"channel": v.string(), "body": v.string()}).index(
            "by_channel", ["channel"]
        ),
        "counters": define_table({"n": v.float64()}),
    }
)
