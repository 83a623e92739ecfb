"""The developer's commands, run as subprocesses against a real dev server:
`.env.local`, `run` without the key, `functions`, `logs` (and `--follow`),
`dashboard`, `codegen`, `init`, and bindings regenerated on every reload.
The routes they read: test_cli_admin_api.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.cli.env_file import read_env_file
from tests.support.devserver import (
    APP_FUNCTIONS,
    ROOT,
    DevServer,
    dev_server,
    free_port,
    wait_until_up,
)


def cli(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYCONVEX_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "runtime", *args],
        capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env,
    )  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevServer, Path]]:
    """The example app, with `.env.local` written into a project folder."""
    project = tmp_path_factory.mktemp("project")
    functions = project / "functions"
    shutil.copytree(APP_FUNCTIONS, functions)
    with dev_server(
        functions,
        project / ".data",
        extra=["--env-file", str(project / ".env.local")],
        codegen=True,
    ) as s:
        yield s, project


def admin_get(s: DevServer, path: str, key: str | None = None) -> Any:
    request = urllib.request.Request(
        s.url + path, headers={"Authorization": f"Convex {key or s.admin_key}"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def test_dev_writes_env_local_and_commands_find_the_server_with_it(
    server: tuple[DevServer, Path],
) -> None:
    s, project = server
    written = read_env_file(project / ".env.local")
    assert written["PYCONVEX_URL"] == s.url == written["CONVEX_URL"]
    assert Path(written["PYCONVEX_ADMIN_KEY_FILE"]) == (project / ".data" / "admin_key").resolve()
    assert f"admin key in {(project / '.data' / 'admin_key').resolve()}" in s.log()
    # From the project folder, with no --url, --admin-key or --data: an internal function runs.
    done = cli("run", "maintenance:trim_messages", "{}", cwd=project)
    assert done.returncode == 0, done.stderr


def test_run_of_an_internal_function_without_the_key_says_the_key_is_missing(
    server: tuple[DevServer, Path], tmp_path: Path
) -> None:
    s, _ = server
    done = cli("run", "maintenance:trim_messages", "{}", "--url", s.url, cwd=tmp_path)
    assert done.returncode == 1
    assert "Could not find public function for 'maintenance:trim_messages'" in done.stderr
    assert "the admin key is missing" in done.stderr


def test_functions_lists_each_function_with_its_types(server: tuple[DevServer, Path]) -> None:
    _, project = server
    done = cli("functions", cwd=project)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(
        line.startswith("M messages:send ") and "args { author: string; body: string; }" in line
        for line in lines
    ), lines
    assert any(
        line.startswith("M maintenance:trim_messages") and "(internal)" in line for line in lines
    )
    assert any(line.startswith("H GET") and "/balance" in line for line in lines)


def _call(s: DevServer, path: str, args: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        s.url + "/api/mutation",
        data=json.dumps({"path": path, "args": args}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return dict(json.loads(answer.read()))
    except urllib.error.HTTPError as e:
        with e:
            return dict(json.loads(e.read()))


def test_logs_show_calls_and_refused_calls_and_wait_for_the_next(
    server: tuple[DevServer, Path],
) -> None:
    s, project = server
    start = admin_get(s, "/api/admin/logs")["next"]
    assert _call(s, "messages:send", {"author": "ann", "body": "logged"})["status"] == "success"
    refused = _call(s, "messages:send", {"author": 5})
    assert refused["code"] == "ARGUMENTS_INVALID"
    entries = admin_get(s, f"/api/admin/logs?after={start}")["entries"]
    assert [(e["path"], e["ok"]) for e in entries] == [
        ("messages:send", True),
        ("messages:send", False),
    ]
    assert "ARGUMENTS_INVALID" in entries[1]["error"]

    done = cli("logs", "-n", "2", cwd=project)
    assert done.returncode == 0, done.stderr
    shown = done.stdout.splitlines()
    assert "M messages:send" in shown[0] and shown[0].endswith("ok")
    assert "error  [Request ID:" in shown[1] and "ARGUMENTS_INVALID" in shown[1]

    # A long-poll waits for the next call and returns it.
    last = admin_get(s, "/api/admin/logs")["next"]
    got: list[Any] = []
    waiter = threading.Thread(
        target=lambda: got.append(admin_get(s, f"/api/admin/logs?after={last}&wait=20"))
    )
    waiter.start()
    time.sleep(0.3)
    assert waiter.is_alive()  # nothing yet: still waiting
    _call(s, "messages:send", {"author": "bob", "body": "wakes the poll"})
    waiter.join(20)
    assert got and [e["path"] for e in got[0]["entries"]] == ["messages:send"]


def test_logs_follow_prints_each_call_as_it_happens(server: tuple[DevServer, Path]) -> None:
    s, project = server
    _call(s, "messages:send", {"author": "ann", "body": "before"})
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYCONVEX_")}
    env["PYTHONPATH"] = str(ROOT)
    follower = subprocess.Popen(
        [sys.executable, "-m", "runtime", "logs", "--follow", "-n", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=project, env=env,
    )  # fmt: skip
    try:
        assert follower.stdout is not None
        first = follower.stdout.readline()  # the last call so far: it is connected
        assert "M messages:send" in first and first.rstrip().endswith("ok"), first
        _call(s, "messages:send", {"author": 7, "body": "refused"})
        refused = follower.stdout.readline()
        assert "M messages:send" in refused and "ARGUMENTS_INVALID" in refused, refused
    finally:
        follower.terminate()
        follower.communicate(timeout=30)


def test_logs_with_no_lines_asked_prints_none(server: tuple[DevServer, Path]) -> None:
    s, project = server
    _call(s, "messages:send", {"author": "ann", "body": "not shown"})
    done = cli("logs", "-n", "0", cwd=project)
    assert done.returncode == 0 and done.stdout == "", done.stdout


def test_dashboard_prints_its_url(server: tuple[DevServer, Path]) -> None:
    s, project = server
    assert cli("dashboard", cwd=project).stdout.strip() == f"{s.url}/_dashboard"
    with_key = cli("dashboard", "--with-key", cwd=project).stdout.strip()
    assert with_key == f"{s.url}/_dashboard#key={s.admin_key}"


def test_dev_regenerates_bindings_on_reload(server: tuple[DevServer, Path]) -> None:
    s, project = server
    api = project / "functions" / "_generated" / "api.d.ts"
    assert "send_image" in api.read_text()
    messages = project / "functions" / "messages.py"
    messages.write_text(
        messages.read_text() + "\n\n@query(args={})\ndef newest(ctx, args):\n    return None\n"
    )
    deadline = time.monotonic() + 30
    while "newest" not in api.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "newest: FunctionReference<" in api.read_text(), s.log()[-2000:]


def test_dev_serves_on_when_the_bindings_cannot_be_written(tmp_path: Path) -> None:
    functions = tmp_path / "functions"
    shutil.copytree(APP_FUNCTIONS, functions, ignore=shutil.ignore_patterns("_generated"))
    (functions / "_generated").write_text("a file where the folder goes")
    with dev_server(functions, tmp_path / ".data", codegen=True) as s:
        assert "codegen FAILED (the bindings are unchanged)" in s.log()
        listed = s.cli("run", "messages:list")
        assert listed.returncode == 0, listed.stderr


def test_codegen_writes_then_reports_up_to_date(tmp_path: Path) -> None:
    functions = tmp_path / "functions"
    shutil.copytree(APP_FUNCTIONS, functions, ignore=shutil.ignore_patterns("_generated"))
    first = cli("codegen", "--functions", str(functions), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "wrote api.js, api.d.ts, dataModel.d.ts" in first.stdout
    again = cli("codegen", "--functions", str(functions), cwd=tmp_path)
    assert "is up to date" in again.stdout
    (functions / "broken.py").write_text("def oops(:\n")
    failed = cli("codegen", "--functions", str(functions), cwd=tmp_path)
    assert failed.returncode == 1 and "broken.py" in failed.stderr


def test_init_makes_an_app_that_runs(tmp_path: Path) -> None:
    done = cli("init", "todo", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    app = tmp_path / "todo"
    assert sorted(p.name for p in (app / "functions").iterdir()) == ["schema.py", "tasks.py"]
    assert (app / ".gitignore").read_text().splitlines()[:2] == [".data/", ".env.local"]
    assert cli("init", "todo", cwd=tmp_path).returncode == 1  # never over an existing app
    # `dev` from the app's folder with its defaults (functions/, .data/,
    # .env.local), then `run` from there with no options at all.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYCONVEX_")}
    env["PYTHONPATH"] = str(ROOT)
    port = free_port()
    log_path = tmp_path / "dev.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "runtime", "dev", "--port", str(port),
             "--site-port", str(free_port())],
            stdout=log, stderr=subprocess.STDOUT, cwd=app, env=env,
        )  # fmt: skip
    s = DevServer(
        f"http://127.0.0.1:{port}", "", app / ".data", app / "functions", process, log_path
    )
    try:
        wait_until_up(s, "dev in the new app", 30)
        assert read_env_file(app / ".env.local")["PYCONVEX_URL"] == s.url
        added = cli("run", "tasks:add", '{"text": "first"}', cwd=app)
        assert added.returncode == 0, added.stderr
        count = cli("run", "tasks:open_count", cwd=app)
        assert count.stdout.strip() == "1.0"
        assert (app / "functions" / "_generated" / "api.d.ts").is_file()
    finally:
        s.stop()
