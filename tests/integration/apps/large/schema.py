from runtime import define_schema, define_table, v

schema = define_schema(
    {
        "rows": define_table({"batch": v.string(), "n": v.number()}).index(
            "by_batch", ["batch", "n"]
        ),
    }
)
