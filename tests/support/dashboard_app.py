"""A small app for the dashboard's tests: a schema to validate edits against,
a job scheduled an hour ahead to cancel, a query that names its caller."""

from __future__ import annotations

from pathlib import Path

FILES = {
    "schema.py": """
from runtime import define_schema, define_table, v

schema = define_schema(
    {"notes": define_table({"text": v.string(), "n": v.number()}).index("by_n", ["n"])}
)
""",
    "notes.py": """
from runtime import mutation, query, v


@mutation(args={"text": v.string(), "n": v.number()})
def add(ctx, args):
    return ctx.db.insert("notes", {"text": args["text"], "n": args["n"]})


@mutation(args={"text": v.string()})
def later(ctx, args):
    return ctx.scheduler.run_after(3_600_000, "notes:add", {"text": args["text"], "n": 0})


@query(args={})
def whoami(ctx, args):
    user = ctx.auth.get_user_identity()
    return None if user is None else user["subject"]
""",
}


def write_dashboard_app(root: Path) -> Path:
    functions = root / "functions"
    functions.mkdir(parents=True)
    for name, text in FILES.items():
        (functions / name).write_text(text.lstrip())
    return functions
