from runtime import define_schema, define_table, v

schema = define_schema(
    {
        "items": define_table({"name": v.string(), "n": v.optional(v.float64())}).index(
            "by_name", ["name"]
        ),
        "stamps": define_table({"t": v.float64(), "r": v.float64()}),
    }
)
