"""The developer's commands around a running backend: `functions`, `logs`,
`dashboard`, and the two that need none: `codegen` and `init`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from runtime.codegen.typescript import ts_type
from runtime.local.calllog import KIND_LETTER, call_line

from .client import BackendClient, CliError
from .templates import TEMPLATE

__all__ = ["codegen", "dashboard", "format_entry", "functions", "init", "logs"]


def _type(validator: dict[str, Any] | None) -> str:
    return "any" if validator is None else " ".join(ts_type(validator).split())


def functions(client: BackendClient) -> int:
    """One line per function: kind, path, visibility, argument and result types."""
    listing = client.json("GET", "/api/admin/functions")
    rows = listing["functions"]
    width = max((len(f["path"]) for f in rows), default=0)
    for f in rows:
        internal = " (internal)" if f["visibility"] == "internal" else ""
        print(
            f"{KIND_LETTER.get(f['kind'], '?')} {f['path']:<{width}}  "
            f"args {_type(f['args'])}  returns {_type(f['returns'])}{internal}"
        )
    for route in listing["http"]:
        print(f"H {route['method']:<6} {route['path']}")
    if not rows and not listing["http"]:
        print("no functions loaded", file=sys.stderr)
    return 0


def format_entry(entry: dict[str, Any]) -> str:
    """A call as the dev server's log shows it (runtime/local/calllog.py)."""
    outcome = "ok" if entry["ok"] else f"error  [Request ID: {entry['requestId']}] {entry['error']}"
    lines = [
        call_line(
            entry["ts"] / 1000,
            entry["kind"],
            entry["path"],
            entry["durationMs"],
            outcome,
            nested=entry["nested"],
        )
    ]
    lines.extend(f"    {line}" for line in entry["logLines"])
    return "\n".join(lines)


def logs(client: BackendClient, *, follow: bool, limit: int | None) -> int:
    """The last calls; with `follow`, then every call as it happens (Ctrl-C stops)."""
    answer = client.json("GET", "/api/admin/logs")
    entries = answer["entries"]
    for entry in entries[max(0, len(entries) - limit) :] if limit is not None else entries:
        print(format_entry(entry), flush=True)
    after = answer["next"]
    try:
        while follow:
            answer = client.json("GET", f"/api/admin/logs?after={after}&wait=20")
            for entry in answer["entries"]:
                print(format_entry(entry), flush=True)
            after = answer["next"]
    except KeyboardInterrupt:
        pass
    return 0


def dashboard(client: BackendClient, *, with_key: bool) -> int:
    """The dashboard's URL (with the key in its fragment, which browsers
    never send to a server, when asked)."""
    url = f"{client.url}/_dashboard"
    if with_key:
        if not client.admin_key:
            raise CliError("--with-key needs the admin key (--admin-key or $PYCONVEX_ADMIN_KEY)")
        url += f"#key={client.admin_key}"
    print(url)
    return 0


def codegen(functions_dir: Path, out: Path | None) -> int:
    """Write the typed client bindings (runtime/codegen)."""
    from runtime.codegen import GENERATED, generate
    from runtime.functions.registry import FunctionLoadError

    try:
        written = generate(functions_dir, out)
    except FunctionLoadError as e:
        raise CliError(f"the functions do not load: {e.message}") from None
    target = out if out is not None else functions_dir / GENERATED
    if written:
        print(f"wrote {', '.join(p.name for p in written)} in {target}")
    else:
        print(f"{target} is up to date")
    return 0


def init(directory: Path) -> int:
    """A new app: `<directory>/functions/` from the template."""
    functions_dir = directory / "functions"
    if functions_dir.exists() and any(functions_dir.iterdir()):
        raise CliError(f"{functions_dir} already holds files: pick a new folder")
    functions_dir.mkdir(parents=True, exist_ok=True)
    for name, text in TEMPLATE.items():
        (functions_dir / name).write_text(text, encoding="utf-8")
    ignore = directory / ".gitignore"
    if not ignore.exists():  # the dev server's data and the key's place stay out of git
        ignore.write_text(".data/\n.env.local\nfunctions/__pycache__/\n", encoding="utf-8")
    print(
        f"created {functions_dir} ({', '.join(sorted(TEMPLATE))}). Next:\n"
        f"  cd {directory} && python -m runtime dev\n"
        f"then, in another terminal in {directory}:\n"
        '  python -m runtime run tasks:add \'{"text": "try pyconvex"}\'\n'
        "  python -m runtime run tasks:list"
    )
    return 0
