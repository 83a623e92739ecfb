from runtime import define_schema, define_table, v

schema = define_schema(
    {
        "accounts": define_table({"owner": v.string(), "balance": v.int64()}).index(
            "by_owner", ["owner"]
        )
    }
)
