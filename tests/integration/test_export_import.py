"""`export` and `import` through the CLI against running dev servers."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

from convex import ConvexInt64
from convex.http_client import ConvexHttpClient

from tests.support.devserver import DevServer


def test_export_then_import_into_a_fresh_backend(
    start_server: Callable[..., DevServer], tmp_path: Path
) -> None:
    source, target = start_server(), start_server()
    client = ConvexHttpClient(source.url)
    for owner in ("ann", "bob"):
        client.mutation("bank:open", {"owner": owner})
    client.mutation("bank:deposit", {"owner": "ann", "amount": ConvexInt64(2**40)})
    snapshot = tmp_path / "snap.zip"
    done = source.cli("export", "--path", str(snapshot))
    assert done.returncode == 0, done.stderr
    # every table of the schema (accounts, and the empty messages and users)
    assert "exported 2 documents from 3 tables" in done.stdout
    with zipfile.ZipFile(snapshot) as z:
        assert {"accounts/documents.jsonl", "_tables/documents.jsonl", "README.md"} <= set(
            z.namelist()
        )
    exported = source.cli("run", "bank:total")
    done = target.cli("import", str(snapshot))
    assert done.returncode == 0, done.stderr
    assert "imported 2 documents into accounts" in done.stdout
    # Same documents, same ids and creation times, int64 kept.
    assert target.cli("run", "bank:total").stdout == exported.stdout
    moved = ConvexHttpClient(target.url)
    assert moved.query("bank:balance", {"owner": "ann"}) == ConvexInt64(2**40)
    again = target.cli("export", "--path", str(tmp_path / "again.zip"))
    assert again.returncode == 0
    with zipfile.ZipFile(snapshot) as a, zipfile.ZipFile(tmp_path / "again.zip") as b:
        assert a.read("accounts/documents.jsonl") == b.read("accounts/documents.jsonl")
    # The default mode refuses a table that has documents; --replace replaces.
    refused = target.cli("import", str(snapshot))
    assert refused.returncode == 1 and "already has 2 documents" in refused.stderr
    replaced = target.cli("import", str(snapshot), "--replace")
    assert replaced.returncode == 0 and "replacing 2" in replaced.stdout


def test_a_malformed_line_fails_with_its_number_and_imports_nothing(
    app_server: DevServer, tmp_path: Path
) -> None:
    before = app_server.cli("run", "bank:total").stdout
    count = ConvexHttpClient(app_server.url).query("bank:info")["accounts"].value
    lines = [f'{{"owner": "imp{i}", "balance": {{"$integer": "AQAAAAAAAAA="}}}}' for i in range(50)]
    lines[36] = '{"owner": "broken", "balance": '
    bad = tmp_path / "accounts.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    done = app_server.cli("import", str(bad), "--table", "accounts", "--append")
    assert done.returncode == 1 and "line 37" in done.stderr
    lines[36] = '{"owner": 37, "balance": {"$integer": "AQAAAAAAAAA="}}'
    bad.write_text("\n".join(lines) + "\n")
    done = app_server.cli("import", str(bad), "--table", "accounts", "--append")
    assert done.returncode == 1 and "line 37: does not match the schema" in done.stderr
    assert ConvexHttpClient(app_server.url).query("bank:info")["accounts"].value == count
    assert app_server.cli("run", "bank:total").stdout == before
    lines[36] = '{"owner": "fixed", "balance": {"$integer": "AQAAAAAAAAA="}}'
    bad.write_text("\n".join(lines) + "\n")
    done = app_server.cli("import", str(bad), "--table", "accounts", "--append")
    assert done.returncode == 0 and "imported 50 documents into accounts" in done.stdout
    assert ConvexHttpClient(app_server.url).query("bank:info")["accounts"].value == count + 50


def test_import_arguments_are_checked(app_server: DevServer, tmp_path: Path) -> None:
    jsonl = tmp_path / "x.jsonl"
    jsonl.write_text('{"owner": "q", "balance": {"$integer": "AQAAAAAAAAA="}}\n')
    no_table = app_server.cli("import", str(jsonl))
    assert no_table.returncode == 1 and "needs --table" in no_table.stderr
    missing = app_server.cli("import", str(tmp_path / "nope.jsonl"), "--table", "accounts")
    assert missing.returncode == 1 and "no such file" in missing.stderr
    csv = tmp_path / "x.csv"
    csv.write_text("a,b\n")
    wrong = app_server.cli("import", str(csv), "--table", "accounts")
    assert wrong.returncode == 1 and ".jsonl file or a snapshot .zip" in wrong.stderr
    unknown = app_server.cli("import", str(jsonl), "--table", "nosuchtable", "--append")
    assert unknown.returncode == 1 and "not in the schema" in unknown.stderr
