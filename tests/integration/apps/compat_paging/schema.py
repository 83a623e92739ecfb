from runtime import define_schema, define_table, v

schema = define_schema(
    {
        "items": define_table({"n": v.number(), "tag": v.string()}).index("by_n", ["n"]),
        "scores": define_table(
            {
                "score": v.number(),
                "count": v.int64(),
                "either": v.union(v.int64(), v.number()),
                "history": v.array(v.number()),
                "extra": v.optional(v.object({"weight": v.number()})),
            }
        ),
    }
)
