"""The README's API examples run: the files of its "HTTP actions", "Paginated
queries" and "Full-text search" sections (each code block that starts with
`# functions/<file>`) make one app per section, served by a real dev server,
and the section's own client code and curl lines run against it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.devserver import ROOT, DevServer, dev_server

README = (ROOT / "README.md").read_text()
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end]


def blocks(title: str, lang: str) -> list[str]:
    return [body for kind, body in BLOCK.findall(section(title)) if kind == lang]


def app_from(title: str, root: Path) -> Path:
    functions = root / "functions"
    functions.mkdir()
    for body in blocks(title, "python"):
        first = body.splitlines()[0]
        if first.startswith("# functions/"):
            (functions / first.removeprefix("# functions/")).write_text(body)
    assert sorted(p.name for p in functions.iterdir()), f"no files in the {title} section"
    return functions


def call(server: DevServer, kind: str, path: str, args: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        f"{server.url}/api/{kind}",
        data=json.dumps({"path": path, "args": args}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        body = json.loads(answer.read())
    assert body["status"] == "success", body
    return body["value"]


def local(text: str, server: DevServer) -> str:
    """The example's default addresses, pointed at this test's server."""
    return text.replace("http://127.0.0.1:3210", server.url).replace(
        "http://127.0.0.1:3211", server.site_url
    )


def test_http_actions_example(tmp_path: Path) -> None:
    with dev_server(app_from("HTTP actions", tmp_path), tmp_path / "data") as server:
        (shell,) = blocks("HTTP actions", "sh")
        outputs = []
        for line in shell.strip().splitlines():
            command = local(line.split("#")[0].strip(), server)
            done = subprocess.run(
                ["sh", "-c", command + " -s -w ' %{http_code}'"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            outputs.append(done.stdout)
        posted, listed = outputs
        assert posted.endswith(" 201") and json.loads(posted[:-4])["id"]
        assert listed == '["hi"] 200'
        bad = subprocess.run(
            ["curl", "-s", "-w", " %{http_code}", "-X", "POST", f"{server.site_url}/messages",
             "-d", '{"author": 1}'],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert bad.stdout.endswith(" 400")


def test_pagination_example(tmp_path: Path) -> None:
    with dev_server(app_from("Paginated queries", tmp_path), tmp_path / "data") as server:
        for n in range(1, 8):
            call(server, "mutation", "messages:send", {"author": "ann", "body": f"m{n}"})
        (client,) = [b for b in blocks("Paginated queries", "python") if "ConvexClient" in b]
        done = subprocess.run(
            [sys.executable, "-c", local(client, server)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == [
            "['m7', 'm6', 'm5', 'm4', 'm3']",
            "['m2', 'm1']",
        ]


def test_search_example(tmp_path: Path) -> None:
    channel = "general"
    with dev_server(app_from("Full-text search", tmp_path), tmp_path / "data") as server:
        for body, where in [
            ("hello world", channel),
            ("hello there", channel),
            ("a word to the wise", channel),
            ("hello world", "random"),
            ("nothing alike", channel),
        ]:
            call(server, "mutation", "messages:send", {"body": body, "channel": where})
        found = call(server, "query", "messages:search", {"text": "hello wor", "channel": channel})
        assert found[0] == "hello world"
        assert sorted(found) == ["a word to the wise", "hello there", "hello world"]
