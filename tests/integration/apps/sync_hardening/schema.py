from runtime import define_schema, define_table, v

schema = define_schema(
    {
        "notes": define_table({"topic": v.string(), "body": v.string()}).index(
            "by_topic", ["topic"]
        ),
    }
)
