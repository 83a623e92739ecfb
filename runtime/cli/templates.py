"""The app `python -m runtime init DIR` creates: a schema, a query and
mutations over one table (kept as text here, so it ships in the package)."""

from __future__ import annotations

__all__ = ["TEMPLATE"]

TEMPLATE = {
    "schema.py": '''"""The app's tables: documents are checked against these validators."""

from runtime import define_schema, define_table, v

schema = define_schema(
    {
        "tasks": define_table({"text": v.string(), "done": v.boolean()}).index(
            "by_done", ["done"]
        ),
    }
)
''',
    "tasks.py": '''"""A to-do list: a live query and two mutations.

    python -m runtime run tasks:add '{"text": "write the first function"}'
    python -m runtime run tasks:list
"""

from runtime import mutation, query, v


@query(args={}, returns=v.array(v.any()))
def list(ctx, args):
    return ctx.db.query("tasks").order("desc").take(100)


@query(args={}, returns=v.number())
def open_count(ctx, args):
    return len(ctx.db.query("tasks").with_index("by_done", lambda q: q.eq("done", False)).collect())


@mutation(args={"text": v.string()}, returns=v.id("tasks"))
def add(ctx, args):
    return ctx.db.insert("tasks", {"text": args["text"], "done": False})


@mutation(args={"id": v.id("tasks")})
def toggle(ctx, args):
    task = ctx.db.get(args["id"])
    if task is not None:
        ctx.db.patch(args["id"], {"done": not task["done"]})
''',
}
