"""The dev server as a developer meets it: reloads, schema pushes, production
mode, environment variables, HTTP actions, the CLI, restarts."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from convex import ConvexError, ConvexInt64
from convex.http_client import ConvexExecutionError, ConvexHttpClient

from tests.support.devserver import DevServer, start_dev_server

StartServer = Callable[..., DevServer]


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def edit(path: Path, text: str) -> None:
    path.write_text(text)


# ---- reload ------------------------------------------------------------------------


def test_editing_a_function_reloads_it(start_server: StartServer) -> None:
    server = start_server()
    client = ConvexHttpClient(server.url)
    assert client.query("bank:info")["name"] == "Example Bank"
    edit(
        server.functions / "extra.py",
        "from runtime import query\n\n@query\ndef hello(ctx, args):\n    return 'hi'\n",
    )
    wait_for(lambda: _call(server, "extra:hello") == "hi")
    assert client.query("extra:hello") == "hi"
    edit(
        server.functions / "extra.py",
        "from runtime import query\n\n@query\ndef hello(ctx, args):\n    return 'hello again'\n",
    )
    wait_for(lambda: _call(server, "extra:hello") == "hello again")


def test_a_broken_file_keeps_the_previous_functions(start_server: StartServer) -> None:
    server = start_server()
    client = ConvexHttpClient(server.url)
    client.mutation("bank:open", {"owner": "ann"})
    edit(server.functions / "broken.py", "from runtime import query\n\ndef oops(:\n")
    wait_for(lambda: "reloaded FAILED" in server.log())
    assert "broken.py:3" in server.log() and "SyntaxError" in server.log()
    assert client.query("bank:balance", {"owner": "ann"}) == ConvexInt64(0)
    (server.functions / "broken.py").unlink()
    wait_for(lambda: server.log().count("functions ready") >= 2)


def test_a_schema_that_existing_documents_violate_is_refused(start_server: StartServer) -> None:
    server = start_server()
    client = ConvexHttpClient(server.url)
    ann = client.mutation("bank:open", {"owner": "ann"})
    schema = server.functions / "schema.py"
    edit(
        schema,
        schema.read_text().replace(
            '"balance": v.int64()', '"balance": v.int64(), "email": v.string()'
        ),
    )
    wait_for(lambda: "reloaded FAILED" in server.log())
    log = server.log()
    assert ann in log and "email" in log and "previous one stays in force" in log
    # The old schema is in force: an account without an email can still be opened.
    client.mutation("bank:open", {"owner": "bob"})
    # A compatible change goes through.
    edit(
        schema,
        schema.read_text().replace('"email": v.string()', '"email": v.optional(v.string())'),
    )
    wait_for(lambda: server.log().count("functions ready") >= 2)
    client.mutation("bank:open", {"owner": "cid"})


def _call(server: DevServer, path: str) -> object:
    r = requests.post(server.url + "/api/query", json={"path": path, "args": {}}, timeout=10).json()
    return r.get("value")


# ---- production mode ---------------------------------------------------------------


def test_prod_mode_redacts_errors_but_keeps_convex_errors(tmp_path: Path) -> None:
    app = Path(__file__).parent / "apps" / "behaviours"
    server = start_dev_server(app, tmp_path / "data", prod=True)
    try:
        body = requests.post(
            server.url + "/api/query", json={"path": "items:boom", "args": {}}, timeout=10
        ).json()
        assert body["status"] == "error" and body["logLines"] == []
        request_id = re.fullmatch(
            r"\[Request ID: ([0-9a-f]{16})\] Server Error", body["errorMessage"]
        )
        assert request_id is not None, body
        assert "kaput" in server.log()  # the log keeps the real error and its traceback
        assert f"[Request ID: {request_id[1]}] Uncaught ValueError: kaput" in server.log()
        body = requests.post(
            server.url + "/api/mutation",
            json={"path": "items:chatty", "args": {"name": "q"}},
            timeout=10,
        ).json()
        assert body["status"] == "success" and body["logLines"] == []
        with pytest.raises(ConvexExecutionError, match="Server Error"):
            ConvexHttpClient(server.url).mutation("items:write_then_boom", {"name": "z"})
        with pytest.raises(ConvexError):
            ConvexHttpClient(server.url).mutation("items:write_then_convex_error", {"name": "z"})
    finally:
        server.stop()


# ---- environment variables ---------------------------------------------------------


def test_env_vars_from_the_cli_reach_functions_without_a_restart(app_server: DevServer) -> None:
    client = ConvexHttpClient(app_server.url)
    assert client.query("bank:info")["name"] == "Example Bank"
    done = app_server.cli("env", "set", "BANK_NAME", "Bank of Loopback")
    assert done.returncode == 0, done.stderr
    assert client.query("bank:info")["name"] == "Bank of Loopback"
    assert app_server.cli("env", "get", "BANK_NAME").stdout == "Bank of Loopback\n"
    assert "BANK_NAME=Bank of Loopback" in app_server.cli("env", "list").stdout
    assert app_server.cli("env", "remove", "BANK_NAME").returncode == 0
    assert client.query("bank:info")["name"] == "Example Bank"
    missing = app_server.cli("env", "get", "BANK_NAME")
    assert missing.returncode == 1 and "not set" in missing.stderr


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("1BAD", "x", "start with a letter"),
        ("A" * 41, "x", "limit is 40"),
        ("BIG", "x" * 9000, "limit is 8192"),
    ],
)
def test_bad_env_vars_are_refused(
    app_server: DevServer, name: str, value: str, problem: str
) -> None:
    done = app_server.cli("env", "set", name, value)
    assert done.returncode == 1 and problem in done.stderr
    assert name not in app_server.cli("env", "list").stdout


def test_env_routes_need_the_admin_key(app_server: DevServer) -> None:
    r = requests.get(app_server.url + "/api/admin/env", timeout=10)
    assert r.status_code == 401 and r.json()["code"] == "ADMIN_KEY_REQUIRED"


# ---- HTTP actions --------------------------------------------------------------------


def test_http_actions_on_the_site_port(app_server: DevServer) -> None:
    client = ConvexHttpClient(app_server.url)
    client.mutation("bank:open", {"owner": "hal"})
    r = requests.post(
        app_server.site_url + "/deposit", json={"owner": "hal", "amount": 12}, timeout=10
    )
    assert r.status_code == 200 and r.json() == {"ok": True}
    r = requests.get(app_server.site_url + "/balance", params={"owner": "hal"}, timeout=10)
    assert (
        r.json() == {"owner": "hal", "balance": {"$integer": "DAAAAAAAAAA="}}
        or r.json()["balance"] == 12
    )
    assert requests.get(app_server.site_url + "/balance", timeout=10).status_code == 400
    assert requests.get(app_server.site_url + "/nowhere", timeout=10).status_code == 404
    wrong = requests.delete(app_server.site_url + "/deposit", timeout=10)
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
    broken = requests.get(app_server.site_url + "/balance", params={"owner": "nobody"}, timeout=10)
    assert broken.status_code == 500 and "NO_ACCOUNT" in broken.text
    assert "H GET /balance" in app_server.log()


# ---- the CLI -------------------------------------------------------------------------


def test_cli_run_prints_results_and_may_call_internal_functions(app_server: DevServer) -> None:
    opened = app_server.cli("run", "bank:open", '{"owner": "cli"}')
    assert opened.returncode == 0, opened.stderr
    doc_id = json.loads(opened.stdout)
    assert isinstance(doc_id, str) and len(doc_id) == 36
    # Integer literals are int64 on the CLI.
    assert app_server.cli("run", "bank:deposit", '{"owner": "cli", "amount": 9}').returncode == 0
    assert json.loads(app_server.cli("run", "bank:balance", '{"owner": "cli"}').stdout) == 9
    assert app_server.cli("run", "bank:close", '{"owner": "cli"}').returncode == 0
    failed = app_server.cli("run", "bank:balance", '{"owner": "cli"}')
    assert failed.returncode == 1 and "NO_ACCOUNT" in failed.stderr
    bad = app_server.cli("run", "bank:balance", "{oops")
    assert bad.returncode == 1 and "not valid JSON" in bad.stderr
    unknown = app_server.cli("run", "bank:nothing")
    assert unknown.returncode == 1 and "FUNCTION_NOT_FOUND" in unknown.stderr


def test_cli_without_a_server_says_how_to_start_one(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.support.devserver import ROOT, free_port

    done = subprocess.run(
        [sys.executable, "-m", "runtime", "run", "bank:total", "--url", f"http://127.0.0.1:{free_port()}", "--data", str(tmp_path)],
        capture_output=True, text=True, timeout=30, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 1 and "make dev" in done.stderr


# ---- restarts ------------------------------------------------------------------------


def test_data_and_env_survive_a_restart(tmp_path: Path) -> None:
    from tests.support.devserver import APP_FUNCTIONS

    data = tmp_path / "data"
    first = start_dev_server(APP_FUNCTIONS, data)
    try:
        ConvexHttpClient(first.url).mutation("bank:open", {"owner": "ann"})
        assert first.cli("env", "set", "BANK_NAME", "Persistent").returncode == 0
    finally:
        assert first.stop() == 0
    second = start_dev_server(APP_FUNCTIONS, data)
    try:
        client = ConvexHttpClient(second.url)
        assert client.query("bank:balance", {"owner": "ann"}) == ConvexInt64(0)
        assert client.query("bank:info") == {"name": "Persistent", "accounts": ConvexInt64(1)}
    finally:
        second.stop()


def test_a_busy_port_is_reported(app_server: DevServer, tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.support.devserver import APP_FUNCTIONS, ROOT

    port = app_server.url.rsplit(":", 1)[1]
    done = subprocess.run(
        [sys.executable, "-m", "runtime", "dev", "--functions", str(APP_FUNCTIONS), "--port", port, "--data", str(tmp_path)],
        capture_output=True, text=True, timeout=30, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode != 0 and f"cannot listen on 127.0.0.1:{port}" in done.stderr
