"""The CLI keeps the admin key where it belongs: it never follows a redirect
(tested against real local HTTP servers that redirect, and record who
received an Authorization header), never sends the key over plain http to
a host that is not this machine, and refuses a weak key or a bad
environment variable before any request. Import files are read with a line
cap, so a small zip of one huge line is refused with bounded memory."""

from __future__ import annotations

import contextlib
import http.server
import secrets
import threading
import tracemalloc
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from runtime.cli.client import BackendClient, CliError, is_loopback_url
from runtime.cli.main import main
from runtime.limits import IMPORT_LINE_BYTES
from runtime.snapshot import SnapshotError, check_file, parse_import
from tests.support.devserver import free_port

KEY = secrets.token_hex(32)


@dataclass
class Recorder:
    """What a local HTTP server received: (method, path, Authorization)."""

    seen: list[tuple[str, str, str | None]] = field(default_factory=list)


@contextlib.contextmanager
def http_server(status: int, location: str | None, recorder: Recorder) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 answering every request with `status`
    (a redirect to `location`, or a JSON body); stopped on exit."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            recorder.seen.append((self.command, self.path, self.headers.get("Authorization")))
            body = b'{"variables": {}}'
            self.send_response(status)
            if location is not None:
                self.send_header("Location", location)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().err


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize(
    "command",
    [
        ["env", "list"],  # a GET: urllib would follow it, the key copied along
        ["env", "set", "GREETING", "hi"],  # a POST
    ],
)
def test_the_cli_does_not_follow_a_redirect_with_the_admin_key(
    capsys: pytest.CaptureFixture[str], status: int, command: list[str], tmp_path: Path
) -> None:
    target = Recorder()
    with http_server(200, None, target) as elsewhere:
        redirector = Recorder()
        with http_server(status, elsewhere + "/api/admin/env", redirector) as url:
            code, err = cli(
                capsys, *command, "--url", url, "--admin-key", KEY, "--data", str(tmp_path)
            )
    assert code == 1
    assert f"HTTP {status}, a redirect to {elsewhere}/api/admin/env" in err
    assert "does not follow redirects" in err and "--url" in err
    assert [auth for _, _, auth in redirector.seen] == [f"Convex {KEY}"]
    assert target.seen == []  # the key went nowhere else


def test_without_a_redirect_the_key_is_sent(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    recorder = Recorder()
    with http_server(200, None, recorder) as url:
        code, _ = cli(
            capsys, "env", "list", "--url", url, "--admin-key", KEY, "--data", str(tmp_path)
        )
    assert code == 0 and recorder.seen == [("GET", "/api/admin/env", f"Convex {KEY}")]


@pytest.mark.parametrize(
    "url", ["http://example.com", "http://10.0.0.1:3210", "http://localhost.example.com:3210"]
)
def test_plain_http_to_another_host_is_refused_before_connecting(
    capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path
) -> None:
    code, err = cli(
        capsys, "env", "list", "--url", url, "--admin-key", KEY, "--data", str(tmp_path)
    )
    assert code == 1
    assert "refusing to send the admin key over plain http" in err and "https://" in err


def test_loopback_urls_may_be_plain_http() -> None:
    for url in [
        "http://127.0.0.1:3210",
        "http://localhost:3210",
        "http://[::1]:3210",
        "http://127.9.9.9",
    ]:
        assert is_loopback_url(url)
        BackendClient(url, KEY)
    assert not is_loopback_url("http://127.0.0.1.example.com")
    BackendClient("https://backend.example.com", KEY)  # https: fine anywhere
    BackendClient("http://backend.example.com", None)  # no key to leak
    with pytest.raises(CliError, match="https:// or http://"):
        BackendClient("ftp://backend.example.com", KEY)


def test_a_weak_admin_key_is_refused_before_any_request(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    recorder = Recorder()
    with http_server(200, None, recorder) as url:
        code, err = cli(
            capsys, "env", "list", "--url", url, "--admin-key", "k", "--data", str(tmp_path)
        )
        assert code == 1 and "needs at least 43" in err
        (tmp_path / "admin_key").write_text("short\n")
        code, err = cli(capsys, "env", "list", "--url", url, "--data", str(tmp_path))
        assert code == 1 and "admin_key" in err and "Delete" in err
    assert recorder.seen == []


@pytest.mark.parametrize(
    ("name", "problem"), [("PATH", "reserved"), ("LD_PRELOAD", "reserved"), ("1X", "start with")]
)
def test_env_set_refuses_bad_names_before_any_request(
    capsys: pytest.CaptureFixture[str], name: str, problem: str, tmp_path: Path
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    code, err = cli(
        capsys,
        "env",
        "set",
        name,
        "x",
        "--url",
        nobody,
        "--admin-key",
        KEY,
        "--data",
        str(tmp_path),
    )
    assert code == 1 and "INVALID_ENV_VAR" in err and problem in err
    assert "cannot reach" not in err


# ---- import: a zip bomb -------------------------------------------------------------------


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A snapshot zip (about 260 KB) of one table whose one line is 256 MiB
    of spaces (a blank line, if it were read whole), written in chunks."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.zip"
    chunk = b" " * (1 << 20)
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive,
        archive.open("bomb/documents.jsonl", "w", force_zip64=True) as member,
    ):
        for _ in range(256):
            member.write(chunk)
    assert path.stat().st_size < 400_000
    return path


def peak_bytes_of(fn: object) -> tuple[BaseException | None, int]:
    tracemalloc.start()
    try:
        fn()  # type: ignore[operator]
        error = None
    except BaseException as e:
        error = e
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return error, peak


def test_the_cli_check_refuses_a_zip_of_one_huge_line_with_bounded_memory(bomb: Path) -> None:
    error, peak = peak_bytes_of(lambda: check_file(bomb, "zip", None))
    assert isinstance(error, SnapshotError)
    assert "zip:bomb/documents.jsonl line 1" in error.message
    assert "IMPORT_LINE_BYTES" in error.message
    assert peak < 4 * IMPORT_LINE_BYTES  # the zip holds 128 times that


def test_the_server_parse_refuses_it_too_with_bounded_memory(bomb: Path) -> None:
    with bomb.open("rb") as upload:
        error, peak = peak_bytes_of(lambda: parse_import(upload, "zip", None))
    assert isinstance(error, SnapshotError) and "line 1" in error.message
    assert peak < 4 * IMPORT_LINE_BYTES


def test_a_jsonl_line_over_the_cap_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"a": 1}\n' * 3 + b'{"a": "' + b"x" * IMPORT_LINE_BYTES + b'"}\n')
    with pytest.raises(SnapshotError, match=r"t.jsonl line 4: the line is longer than"):
        check_file(path, "jsonl", "t")
    with pytest.raises(SnapshotError, match=r"line 4: the line is longer than"):
        parse_import(path.read_bytes(), "jsonl", "t")


def test_json_nested_deep_in_an_import_line_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}\n")
    with pytest.raises(SnapshotError, match=r"line 2: not a JSON document: .*deeper than"):
        check_file(path, "jsonl", "t")
