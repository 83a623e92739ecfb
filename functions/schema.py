from runtime import define_schema, define_table, v

schema = define_schema(
    {
        "accounts": define_table({"owner": v.string(), "balance": v.int64()}).index(
            "by_owner", ["owner"]
        ),
        "messages": define_table({"author": v.string(), "body": v.string(), "format": v.string()}),
        "users": define_table({"name": v.string(), "tokenIdentifier": v.string()}).index(
            "by_token", ["tokenIdentifier"]
        ),
    }
)
