from runtime import define_schema, define_table, v

schema = define_schema(
    {"notes": define_table({"list": v.string(), "body": v.string()}).index("by_list", ["list"])}
)
