"""The pure parts of the HTTP-side hardening: the admin key rule and its
byte-exact comparison, the loopback Host rule, environment variables that
are refused or skipped (the Lambda's start path: a Backend built over a
store holding bad ones), and private file modes."""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

import pytest

from runtime.backend import AdminKeyError, Backend, check_admin_key, read_admin_key
from runtime.functions.environment import PARTITION, Environment, EnvVarError
from runtime.http.loopback import is_loopback_host
from runtime.store.port import Put
from runtime.store.sqlite import SqliteStore

EMPTY_APP = Path(__file__).parent  # any folder: these tests never load functions

KEY = secrets.token_hex(32)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# ---- the admin key ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("", "is empty"),
        ("k", "needs at least 43"),
        (secrets.token_hex(21), "needs at least 43"),  # 42 characters
        ("ab" * 40, "not random"),
        (f" {KEY}", "spaces"),
        (f"{KEY}\n", "control"),
        (KEY[:50] + "é" + KEY[50:], "non-ASCII"),
    ],
)
def test_weak_admin_keys_are_refused_with_how_to_fix(key: str, problem: str) -> None:
    with pytest.raises(AdminKeyError, match=problem) as refused:
        check_admin_key(key, "--admin-key")
    assert refused.value.message.startswith("--admin-key ")
    assert "secrets.token_hex(32)" in refused.value.message
    with pytest.raises(AdminKeyError):
        Backend(SqliteStore(":memory:"), EMPTY_APP, admin_key=key)


@pytest.mark.parametrize("key", [secrets.token_hex(32), secrets.token_urlsafe(32), KEY.upper()])
def test_keys_of_32_random_bytes_pass(key: str) -> None:
    assert check_admin_key(key) == key


def test_the_admin_header_is_compared_byte_for_byte() -> None:
    backend = Backend(SqliteStore(":memory:"), EMPTY_APP, admin_key=KEY)
    try:
        assert backend.is_admin(f"Convex {KEY}")
        for near in [
            f"Convex {KEY} ",
            f"Convex {KEY}\n",
            f" Convex {KEY}",
            f"Convex  {KEY}",
            f"Convex\t{KEY}",
            f"convex {KEY}",
            f"Convex {KEY[:-1]}",
            "Convex ",
            "",
            None,
            "Convex \xff\xfe",  # a non-ASCII header as ASGI servers decode it
            "Convex ключ",  # not even latin-1: compares as no key, no error
        ]:
            assert not backend.is_admin(near), repr(near)
    finally:
        backend.close()


def test_no_admin_key_means_no_admin_access() -> None:
    backend = Backend(SqliteStore(":memory:"), EMPTY_APP, admin_key=None)
    try:
        assert backend.admin_key is None
        assert not backend.is_admin("Convex ")
        assert not backend.is_admin("Convex None")
    finally:
        backend.close()


def test_a_generated_key_file_is_private_and_passes(tmp_path: Path) -> None:
    data = tmp_path / "new" / "data"
    key = read_admin_key(data, create=True)
    assert key is not None and check_admin_key(key) == key
    assert mode(data) == 0o700 and mode(data / "admin_key") == 0o600
    assert read_admin_key(data) == key  # read back without its line end


def test_a_weak_key_file_is_refused_naming_the_file_and_the_fix(tmp_path: Path) -> None:
    (tmp_path / "admin_key").write_text("short\n")
    with pytest.raises(AdminKeyError, match="needs at least 43") as refused:
        read_admin_key(tmp_path, create=True)
    assert str(tmp_path / "admin_key") in refused.value.message
    assert "Delete" in refused.value.message
    (tmp_path / "admin_key").write_bytes(b"\xff" * 64)
    with pytest.raises(AdminKeyError, match="non-ASCII"):
        read_admin_key(tmp_path)


# ---- Host names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "localhost:3210",
        "LocalHost:1",
        "localhost.",
        "app.localhost",
        "a.b.localhost:8080",
        "127.0.0.1",
        "127.0.0.1:3210",
        "127.1.2.3:80",
        "[::1]",
        "[::1]:3210",
    ],
)
def test_loopback_hosts(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize(
    "host",
    [
        "",
        "evil.example",
        "localhost.evil.example",
        "127.0.0.1.nip.io",
        "localhostx",
        "0.0.0.0",
        "10.0.0.1:3210",
        "[::2]",
        "[::1",
        "[::1]x",
        "::1",  # an IPv6 address in a Host header needs brackets
        "localhost:port",
        "localhost:99999999",
        "localhost:١٢",  # Unicode digits are not a port
    ],
)
def test_other_hosts(host: str) -> None:
    assert not is_loopback_host(host)


# ---- environment variables -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("NUL", "a\x00b", "NUL"),
        ("SURROGATE", "a\ud800", "lone surrogate"),
        ("PATH", "/x", "reserved"),
        ("Path", "/x", "reserved"),
        ("TZ", "UTC", "reserved"),
        ("PYTHONHASHSEED", "0", "reserved"),
        ("LD_PRELOAD", "/x.so", "reserved"),
        ("AWS_SECRET_ACCESS_KEY", "x", "reserved"),
        ("PYCONVEX_ADMIN_KEY_FILE", "/x", "reserved"),
        ("A B", "x", "start with a letter"),
        ("ÄPFEL", "x", "start with a letter"),
        ("A\ud800", "x", "start with a letter"),
    ],
)
def test_bad_variables_are_refused_and_nothing_is_stored(
    name: str, value: str, problem: str
) -> None:
    env = Environment(SqliteStore(":memory:"))
    with pytest.raises(EnvVarError, match=problem):
        env.update({"FINE": "1", name: value})
    assert env.list() == {}
    assert "FINE" not in os.environ


def test_a_backend_starts_over_stored_variables_that_are_now_invalid(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The Lambda's cold start: Backend() applies the stored variables."""
    store = SqliteStore(":memory:")
    stored = {
        "GOOD_VALUE": "fine",
        "NUL_VALUE": "a\x00b",
        "PYTHONINSPECT": "1",
        "bad-name": "x",
    }
    store.transact([Put((PARTITION, n.encode()), x.encode()) for n, x in stored.items()])
    store.transact([Put((PARTITION, b"NOT_UTF8"), b"\xff\xfe")])
    with caplog.at_level(logging.WARNING, logger="runtime.functions.environment"):
        backend = Backend(store, EMPTY_APP, admin_key=None)
    try:
        assert os.environ["GOOD_VALUE"] == "fine"
        assert os.environ["NOT_UTF8"] == "\ufffd\ufffd"
        assert "NUL_VALUE" not in os.environ and "PYTHONINSPECT" not in os.environ
        assert "bad-name" not in os.environ
        skipped = [r.getMessage() for r in caplog.records]
        assert len(skipped) == 3 and all("skipped" in m for m in skipped)
        backend.environment.refresh(0)  # a warm container re-reads: no new warning
        assert len(caplog.records) == 3
        # Listed, and removable even under a reserved name.
        assert set(backend.environment.list()) == {*stored, "NOT_UTF8"}
        backend.environment.update({"PYTHONINSPECT": None, "bad-name": None})
        assert "PYTHONINSPECT" not in backend.environment.list()
    finally:
        backend.close()
    assert "GOOD_VALUE" not in os.environ


# ---- file modes -------------------------------------------------------------------------------


def test_sqlite_files_are_private_wal_and_shm_too(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    store = SqliteStore(str(path))
    try:
        store.transact([Put(("p", b"k"), b"v")])
        names = {p.name for p in tmp_path.iterdir()}
        assert {"db.sqlite3", "db.sqlite3-wal", "db.sqlite3-shm"} <= names
        for name in names:
            assert mode(tmp_path / name) == 0o600, name
    finally:
        store.close()


def test_sqlite_files_left_readable_by_an_earlier_run_are_tightened(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    SqliteStore(str(path)).close()
    os.chmod(path, 0o644)
    store = SqliteStore(str(path))
    try:
        assert mode(path) == 0o600
    finally:
        store.close()
