"""A small app for the dashboard's tests: a schema to validate edits against,
a job scheduled an hour ahead to cancel, a query that names its caller."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

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


def admin_request(
    server: Any, method: str, path: str, body: Any = None, *, admin: bool = True
) -> tuple[int, Any]:
    """(status, JSON body) of one request to a backend (either shell); the
    admin key sent unless admin=False."""
    headers = {"Content-Type": "application/json"}
    if admin:
        headers["Authorization"] = f"Convex {server.admin_key}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(server.url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as e:
        with e:
            return e.code, json.loads(e.read())


def call(server: Any, path: str, args: dict[str, Any]) -> Any:
    """A public function's value, called without the key."""
    status, body = admin_request(
        server, "POST", "/api/function", {"path": path, "args": args}, admin=False
    )
    assert status == 200 and body["status"] == "success", body
    return body["value"]
