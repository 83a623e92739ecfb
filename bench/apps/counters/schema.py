from runtime import define_schema, define_table, v

schema = define_schema({"counters": define_table({"n": v.int64()})})
