"""`.env.local`: where the dev server tells the other commands (and a web
app's tooling) how to reach it, as Convex's CLI writes `.env.local` beside
a project. `dev` writes it in the folder it runs from; `run`, `logs`,
`functions`, `env`, `export`, `import` and `dashboard` read it from theirs.

    CONVEX_URL=http://127.0.0.1:3210          the API, as Convex names it
    PYCONVEX_URL=http://127.0.0.1:3210        what the CLI reads
    PYCONVEX_ADMIN_KEY_FILE=/abs/.data/admin_key
                                              where the key is (the key itself
                                              stays in its 0600 file)

Other lines of an existing file are kept as they are.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ENV_FILE", "read_env_file", "write_env_file"]

ENV_FILE = Path(".env.local")


def read_env_file(path: Path = ENV_FILE) -> dict[str, str]:
    """NAME=value lines (comments and blank lines skipped; quotes removed)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    found: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        found[name.strip()] = value
    return found


def write_env_file(path: Path, values: dict[str, str]) -> None:
    """Set `values` in the file, keeping its other lines."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        lines = ["# Written by `python -m runtime dev`: how to reach the local backend."]
    left = dict(values)
    out = []
    for line in lines:
        name = line.removeprefix("export ").partition("=")[0].strip()
        if name in left and not line.lstrip().startswith("#"):
            out.append(f"{name}={left.pop(name)}")
        else:
            out.append(line)
    out.extend(f"{name}={value}" for name, value in left.items())
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
