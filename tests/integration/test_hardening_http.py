"""Hostile input over real sockets against the dev server: every refusal is
a 4xx with a message (never a 500, never silence) and the server keeps
serving others; only loopback Host names are served; bad environment
variables are refused and a stored one cannot stop the server; the data
folder's files are private; an admin key too weak is refused at start."""

from __future__ import annotations

import http.client
import json
import os
import socket
import stat
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from runtime.functions.environment import PARTITION
from runtime.limits import IMPORT_LINE_BYTES
from runtime.store.port import Put
from runtime.store.sqlite import SqliteStore
from tests.support.devserver import ROOT, DevServer, free_port, start_dev_server

APP = {
    "hard.py": """
import os

from runtime import mutation, query, v


@query(args={"value": v.any()})
def echo(ctx, args):
    return args["value"]


@query(args={})
def surrogate(ctx, args):
    return "a\\ud800b"


@query(args={})
def fails_with_surrogate(ctx, args):
    raise ValueError("bad \\ud800 text")


@query(args={})
def prints_surrogate(ctx, args):
    print("line \\ud800")
    return 1


@mutation(args={})
def note(ctx, args):
    return ctx.db.insert("notes", {"text": "fine"})


@mutation(args={})
def stores_surrogate(ctx, args):
    return ctx.db.insert("notes", {"text": "x\\udfff"})


@query(args={"name": v.string()})
def env(ctx, args):
    return os.environ.get(args["name"])
""",
    "http.py": """
from starlette.responses import PlainTextResponse

from runtime import HttpRouter, http_action

http = HttpRouter()


@http_action
async def echo(ctx, request):
    return PlainTextResponse((await request.body()).decode())


http.route(path="/echo", method="POST", handler=echo)
""",
}


def write_app(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in APP.items():
        (folder / name).write_text(text)
    return folder


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    root = tmp_path_factory.mktemp("hardening")
    # --data given again after the helper's own: the dev server creates this folder itself.
    fresh = root / "fresh" / "data"
    started = start_dev_server(
        write_app(root / "functions"), root / "data", extra=["--data", str(fresh)]
    )
    started.data = fresh
    yield started
    started.stop()


def call(server: DevServer, path: str, args: Any = None, **kw: Any) -> requests.Response:
    return requests.post(
        server.url + "/api/query", json={"path": path, "args": args or {}}, timeout=30, **kw
    )


def post_raw(server: DevServer, route: str, body: bytes, **headers: str) -> requests.Response:
    return requests.post(
        server.url + route,
        data=body,
        headers={"Content-Type": "application/json", **headers},
        timeout=30,
    )


def still_serving(server: DevServer) -> None:
    answer = call(server, "hard:echo", {"value": "ok"})
    assert answer.status_code == 200 and answer.json()["value"] == "ok"


# ---- the Authorization header ----------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "Convex ключ".encode(),  # UTF-8 bytes: the server sees latin-1 text
        b"Convex \xff\xfe",
        "Bearer é".encode(),
        b"Convex",
    ],
)
def test_a_non_ascii_authorization_header_is_a_401_not_a_500(
    server: DevServer, header: bytes
) -> None:
    answer = call(server, "hard:echo", {"value": 1}, headers={"Authorization": header})  # type: ignore[dict-item]
    assert answer.status_code == 401, answer.text
    assert answer.json()["code"] in ("BAD_ADMIN_KEY", "Unauthenticated")
    admin = requests.get(
        server.url + "/api/admin/env",
        headers={"Authorization": header},
        timeout=30,  # type: ignore[dict-item]
    )
    assert admin.status_code == 401 and admin.json()["code"] == "ADMIN_KEY_REQUIRED"
    still_serving(server)


def test_the_admin_key_is_compared_byte_for_byte(server: DevServer) -> None:
    key = server.admin_key
    ok = requests.get(server.url + "/api/admin/env", headers={"Authorization": f"Convex {key}"})
    assert ok.status_code == 200
    # (Spaces around a header value are not part of it in HTTP: unit tests cover those.)
    for near in [f"Convex  {key}", f"convex {key}", f"Convex {key}x", f"Convex {key[:-1]}"]:
        answer = requests.get(
            server.url + "/api/admin/env", headers={"Authorization": near}, timeout=30
        )
        assert answer.status_code == 401, repr(near)


# ---- JSON bodies ----------------------------------------------------------------------


def test_json_nested_thousands_deep_is_a_400(server: DevServer) -> None:
    deep = '{"path": "hard:echo", "args": {"value": ' + "[" * 5000 + "]" * 5000 + "}}"
    answer = post_raw(server, "/api/query", deep.encode())
    assert answer.status_code == 400
    assert answer.json()["code"] == "BAD_JSON_BODY" and "deeper than" in answer.json()["message"]
    still_serving(server)


def test_json_as_deep_as_a_value_may_be_still_runs(server: DevServer) -> None:
    value: Any = "leaf"
    for _ in range(15):
        value = [value]
    answer = call(server, "hard:echo", {"value": value})
    assert answer.status_code == 200 and answer.json()["value"] == value


def test_an_integer_literal_over_the_digit_limit_is_a_400(server: DevServer) -> None:
    for digits in (401, 5000, 100_000):
        body = '{"path": "hard:echo", "args": {"value": ' + "7" * digits + "}}"
        answer = post_raw(server, "/api/query", body.encode())
        assert answer.status_code == 400, answer.text
        assert "CLIENT_JSON_INT_DIGITS" in answer.json()["message"]
    body = '{"path": "hard:echo", "args": {"value": ' + "7" * 350 + "}}"  # > a float64
    answer = post_raw(server, "/api/query", body.encode())
    assert answer.status_code == 400 and "float64" in answer.json()["message"]
    still_serving(server)


@pytest.mark.parametrize(
    "args", [r'{"value": "\ud800"}', r'{"value": ["a\udc00"]}', r'{"\udfff": 1}']
)
def test_lone_surrogates_in_arguments_are_a_400(server: DevServer, args: str) -> None:
    body = '{"path": "hard:echo", "args": ' + args + "}"
    answer = post_raw(server, "/api/query", body.encode())
    assert answer.status_code == 400 and "lone surrogate" in answer.json()["message"]
    still_serving(server)


def test_a_result_holding_a_lone_surrogate_is_a_function_error(server: DevServer) -> None:
    answer = call(server, "hard:surrogate")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "error" and "not a Convex value" in body["errorMessage"]
    assert "lone surrogate" in body["errorMessage"]
    stored = requests.post(
        server.url + "/api/mutation", json={"path": "hard:stores_surrogate", "args": {}}
    )
    assert stored.status_code == 200 and stored.json()["status"] == "error"
    assert "lone surrogate" in stored.json()["errorMessage"]
    still_serving(server)


def test_lone_surrogates_in_messages_and_log_lines_show_as_replacement_characters(
    server: DevServer,
) -> None:
    failed = call(server, "hard:fails_with_surrogate")
    assert failed.status_code == 200
    assert "\nUncaught ValueError: bad \ufffd text\n" in failed.json()["errorMessage"]
    printed = call(server, "hard:prints_surrogate")
    assert printed.status_code == 200 and printed.json()["status"] == "success"
    assert any("line \ufffd" in line for line in printed.json()["logLines"])


def test_a_declared_body_over_the_limit_is_a_413_on_both_ports(server: DevServer) -> None:
    for url, route in [(server.url, "/api/query"), (server.site_url, "/echo")]:
        conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=30)
        try:
            conn.putrequest("POST", route)
            conn.putheader("Content-Length", str(10**15))  # and no body sent
            conn.endheaders()
            answer = conn.getresponse()
            assert answer.status == 413
            assert b"the limit is" in answer.read()
        finally:
            conn.close()
    assert requests.post(server.site_url + "/echo", data=b"hi", timeout=30).text == "hi"


# ---- Host names (DNS rebinding) --------------------------------------------------------


def status_for_host(url: str, host: str, path: str = "/version") -> tuple[int, str]:
    netloc = url.removeprefix("http://")
    conn = http.client.HTTPConnection(netloc, timeout=30)
    try:
        conn.putrequest("GET", path, skip_host=True)
        conn.putheader("Host", host)
        conn.endheaders()
        answer = conn.getresponse()
        return answer.status, answer.read().decode()
    finally:
        conn.close()


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:3210",
        "127.0.0.1.evil.example",
        "localhost.evil.example",
        "10.0.0.1",
        "[::2]",
        "localhost:notaport",
    ],
)
def test_other_host_names_are_refused_on_both_ports(server: DevServer, host: str) -> None:
    for url in (server.url, server.site_url):
        status, text = status_for_host(url, host)
        assert status == 403, (url, host)
        assert "only answers requests for localhost" in text and "DNS rebinding" in text


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "localhost:3210",
        "127.0.0.1:1",
        "[::1]:3210",
        "[::1]",
        "app.localhost:80",
        "LOCALHOST",
    ],
)
def test_loopback_host_names_are_served(server: DevServer, host: str) -> None:
    assert status_for_host(server.url, host)[0] == 200
    assert status_for_host(server.site_url, host, "/nothing-here")[0] == 404


def test_a_websocket_upgrade_for_another_host_is_refused(server: DevServer) -> None:
    def upgrade(host: str) -> bytes:
        netloc = server.url.removeprefix("http://")
        name, port = netloc.split(":")
        with socket.create_connection((name, int(port)), timeout=30) as sock:
            sock.sendall(
                (
                    f"GET /api/sync HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    "Sec-WebSocket-Version: 13\r\n\r\n"
                ).encode()
            )
            return sock.recv(200).split(b"\r\n")[0]

    assert upgrade("evil.example").startswith(b"HTTP/1.1 403")
    assert upgrade(server.url.removeprefix("http://")).startswith(b"HTTP/1.1 101")


# ---- environment variables ----------------------------------------------------------------


def env_post(server: DevServer, body: bytes) -> requests.Response:
    return post_raw(server, "/api/admin/env", body, Authorization=f"Convex {server.admin_key}")


def env_list(server: DevServer) -> dict[str, str]:
    answer = requests.get(
        server.url + "/api/admin/env",
        headers={"Authorization": f"Convex {server.admin_key}"},
        timeout=30,
    )
    variables: dict[str, str] = answer.json()["variables"]
    return variables


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"NUL_INSIDE": "a\x00b"}, "NUL"),
        ({"PATH": "/tmp/evil"}, "reserved"),
        ({"PYTHONPATH": "/tmp"}, "reserved"),
        ({"PYTHONSTARTUP": "/tmp/x.py"}, "reserved"),
        ({"LD_PRELOAD": "/tmp/x.so"}, "reserved"),
        ({"AWS_ACCESS_KEY_ID": "x"}, "reserved"),
        ({"PYCONVEX_ADMIN_KEY": "x"}, "reserved"),
        ({"path": "x"}, "reserved"),
        ({"A-B": "x"}, "start with a letter"),
        ({"A=B": "x"}, "start with a letter"),
        ({"É": "x"}, "start with a letter"),
        ({"GOOD_ONE": "1", "LD_LIBRARY_PATH": "/tmp"}, "reserved"),  # all or nothing
    ],
)
def test_bad_environment_variables_are_a_400_and_nothing_is_stored(
    server: DevServer, changes: dict[str, str], problem: str
) -> None:
    answer = env_post(server, json.dumps({"changes": changes}).encode())
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "INVALID_ENV_VAR" and problem in answer.json()["message"]
    assert not set(changes) & set(env_list(server))
    still_serving(server)


def test_a_lone_surrogate_in_a_variable_is_a_400(server: DevServer) -> None:
    answer = env_post(server, rb'{"changes": {"SURROGATE": "x\ud800"}}')
    assert answer.status_code == 400 and "lone surrogate" in answer.json()["message"]
    assert "SURROGATE" not in env_list(server)


def test_stored_variables_that_are_now_invalid_do_not_stop_the_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    store = SqliteStore(str(data / "db.sqlite3"))
    stored = {"NUL_VALUE": "a\x00b", "LD_PRELOAD": "/nonexistent.so", "GOOD_ONE": "fine"}
    store.transact([Put((PARTITION, n.encode()), x.encode()) for n, x in stored.items()])
    store.close()
    server = start_dev_server(write_app(tmp_path / "functions"), data)
    try:
        assert call(server, "hard:env", {"name": "GOOD_ONE"}).json()["value"] == "fine"
        assert call(server, "hard:env", {"name": "NUL_VALUE"}).json()["value"] is None
        assert call(server, "hard:env", {"name": "LD_PRELOAD"}).json()["value"] is None
        log = server.log()
        assert "environment variable skipped" in log and "LD_PRELOAD is a reserved name" in log
        assert "NUL" in log
        # Still listed, so they can be removed.
        assert env_list(server) == stored
        removed = server.cli("env", "remove", "LD_PRELOAD")
        assert removed.returncode == 0, removed.stderr
        assert "LD_PRELOAD" not in env_list(server)
    finally:
        server.stop()


# ---- files of the data folder ---------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_data_folder_is_private(server: DevServer) -> None:
    created = requests.post(server.url + "/api/mutation", json={"path": "hard:note", "args": {}})
    assert created.json()["status"] == "success"  # a write: the -wal and -shm files exist
    assert mode(server.data) == 0o700
    files = sorted(p.name for p in server.data.iterdir())
    assert {"admin_key", "db.sqlite3", "db.sqlite3-wal", "db.sqlite3-shm"} <= set(files)
    for name in files:  # the stored files' folder is private too
        assert mode(server.data / name) == (0o700 if name == "files" else 0o600), name


# ---- the admin key at start ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        (b"", "is empty"),
        (b"\n", "is empty"),
        (b"short-key\n", "needs at least 43"),
        (b"a" * 64 + b"\n", "not random"),
        (b" " + b"0123456789abcdef" * 4 + b"\n", "spaces"),
    ],
)
def test_the_dev_server_refuses_to_start_with_a_weak_admin_key(
    tmp_path: Path, key: bytes, problem: str
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "admin_key").write_bytes(key)
    functions = write_app(tmp_path / "f")
    command = [sys.executable, "-m", "runtime", "dev", "--functions", str(functions)]
    command += ["--data", str(data), "--port", str(free_port())]
    command += ["--site-port", str(free_port())]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode != 0
    assert problem in done.stderr and "Delete" in done.stderr and "token_hex(32)" in done.stderr
    assert (data / "admin_key").read_bytes() == key  # left for the user to fix


def test_the_local_aws_harness_refuses_a_weak_admin_key_too(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "admin_key").write_bytes(b"short-key\n")
    functions = write_app(tmp_path / "f")
    command = [sys.executable, "-m", "runtime", "aws-local", "--functions", str(functions)]
    command += ["--data", str(data), "--port", str(free_port())]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode != 0
    assert "cannot start" in done.stderr and "needs at least 43" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_generated_key_passes_and_survives_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_dev_server(write_app(tmp_path / "f"), data)
    key = server.admin_key
    server.stop()
    assert len(key) == 64
    again = start_dev_server(write_app(tmp_path / "f"), data)
    try:
        assert again.admin_key == key
        assert env_list(again) == {}
    finally:
        again.stop()


# ---- import: a zip bomb ------------------------------------------------------------------------


def zip_bomb(path: Path, size: int) -> Path:
    """A snapshot zip whose one table is one line of `size` spaces, written
    in chunks (never held whole)."""
    chunk = b" " * (1 << 20)
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive,
        archive.open("bomb/documents.jsonl", "w", force_zip64=True) as member,
    ):
        for _ in range(size // len(chunk)):
            member.write(chunk)
    return path


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_zip_that_inflates_to_one_huge_line_is_refused_with_bounded_memory(
    server: DevServer, tmp_path: Path
) -> None:
    bomb = zip_bomb(tmp_path / "bomb.zip", 256 << 20)
    assert bomb.stat().st_size < 400_000
    before = peak_rss_kib(server.process.pid)
    answer = requests.post(
        server.url + "/api/admin/import?format=zip&mode=create",
        data=bomb.read_bytes(),
        headers={"Authorization": f"Convex {server.admin_key}"},
        timeout=120,
    )
    assert answer.status_code == 400, answer.text
    message = answer.json()["message"]
    assert "zip:bomb/documents.jsonl line 1" in message and "IMPORT_LINE_BYTES" in message
    # The server read about one capped line, not the 256 MiB the zip holds.
    assert peak_rss_kib(server.process.pid) - before < 16 * IMPORT_LINE_BYTES // 1024
    still_serving(server)
