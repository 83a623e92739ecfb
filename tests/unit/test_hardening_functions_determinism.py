"""Determinism of queries and mutations (issue 11): the struct_time clock
functions read the frozen clock, SystemRandom/secrets/os.getrandom are
seeded, and processes, sockets and file writes are refused (pointing to
actions) while the same operations work in an action."""

from __future__ import annotations

import os
import pathlib
import random
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runtime import action, mutation, query, v
from runtime.database import Database
from runtime.functions import FunctionRegistry
from runtime.functions.determinism import NonDeterministicError, frozen, install, platform_io
from runtime.functions.executor import Executor
from runtime.functions.guard import refusal
from runtime.store.sqlite import SqliteStore

FROZEN = 1_500_000_000.5  # 2017-07-14, far from today


@pytest.fixture(autouse=True)
def _installed() -> None:
    # Not at import: test_function_runtime checks what `from datetime import
    # datetime` binds before the patches go in.
    install()


# ---- the clock ---------------------------------------------------------------------


def test_struct_time_functions_read_the_frozen_clock() -> None:
    with frozen(FROZEN, seed=1, kind="query"):
        got = (
            time.localtime(),
            time.gmtime(),
            time.ctime(),
            time.asctime(),
            time.strftime("%Y-%m-%d %H:%M:%S"),
            time.localtime(None),
        )
        explicit = time.gmtime(0), time.strftime("%Y", time.gmtime(0))
    real_local = time.localtime(FROZEN)
    assert got[0] == real_local and got[5] == real_local
    assert got[1] == time.gmtime(FROZEN)
    assert got[2] == time.ctime(FROZEN) == time.asctime(real_local) == got[3]
    assert got[4] == time.strftime("%Y-%m-%d %H:%M:%S", real_local)
    assert explicit == (time.gmtime(0), "1970")  # an explicit time is used as given
    assert time.localtime().tm_year >= 2024  # outside a function: the real clock


# ---- randomness ----------------------------------------------------------------------


def _draws() -> list[Any]:
    sysrand = random.SystemRandom()
    return [
        sysrand.random(),
        sysrand.randint(0, 10**9),
        sysrand.randbytes(8),
        secrets.token_hex(8),
        os.getrandom(8),
        os.urandom(8),
    ]


def test_system_random_secrets_and_getrandom_are_seeded_per_call() -> None:
    with frozen(FROZEN, seed=42, kind="mutation"):
        first = _draws()
    with frozen(FROZEN, seed=42, kind="mutation"):
        again = _draws()
    with frozen(FROZEN, seed=43, kind="mutation"):
        other = _draws()
    assert first == again  # a re-run of the call draws the same values
    assert all(a != b for a, b in zip(first, other, strict=True))
    assert _draws() != _draws()  # outside a function: the operating system's randomness


# ---- refused operations ----------------------------------------------------------------


def _listening() -> socket.socket:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    return server


def _connect(tmp: Path) -> None:
    with platform_io():
        server = _listening()
    with server, socket.socket() as client:
        client.connect(server.getsockname())


def _os_open(tmp: Path) -> None:
    os.close(os.open(tmp / "fd", os.O_WRONLY | os.O_CREAT))


def _mkstemp(tmp: Path) -> None:
    fd, _ = tempfile.mkstemp(dir=tmp)
    os.close(fd)


def _sqlite(tmp: Path) -> None:
    sqlite3.connect(tmp / "other.sqlite").close()


def _thread(tmp: Path) -> None:
    # A thread would run outside the guard and the frozen clock.
    t = threading.Thread(target=lambda: (tmp / "from_thread").write_text("x"))
    t.start()
    t.join()


OPERATIONS: dict[str, Callable[[Path], Any]] = {
    "subprocess.run": lambda tmp: subprocess.run([sys.executable, "-c", "pass"], check=True),
    "os.system": lambda tmp: os.system("true"),
    "os.posix_spawn": lambda tmp: os.waitpid(os.posix_spawn("/bin/true", ["true"], {}), 0),
    "socket.connect": _connect,
    "socket.getaddrinfo": lambda tmp: socket.getaddrinfo("localhost", 80),
    "open w": lambda tmp: open(tmp / "w.txt", "w").close(),
    "open a": lambda tmp: open(tmp / "a.txt", "a").close(),
    "open x": lambda tmp: open(tmp / "x.txt", "x").close(),
    "open r+": lambda tmp: open(tmp / "r.txt", "r+").close(),
    "open wb": lambda tmp: open(tmp / "b.bin", "wb").close(),
    "Path.write_text": lambda tmp: (tmp / "p.txt").write_text("x"),
    "os.open": _os_open,
    "os.mkdir": lambda tmp: os.mkdir(tmp / "newdir"),
    "os.rename": lambda tmp: os.rename(tmp / "a", tmp / "b"),
    "os.remove": lambda tmp: os.remove(tmp / "a"),
    "shutil.rmtree": lambda tmp: shutil.rmtree(tmp / "d"),
    "tempfile.mkstemp": _mkstemp,
    "sqlite3.connect": _sqlite,
    "threading.Thread": _thread,
}


def _run(ctx: Any, args: Any) -> str:
    OPERATIONS[args["op"]](Path(args["tmp"]))
    return "done"


_ARGS = {"op": v.string(), "tmp": v.string()}
_query = query(args=_ARGS)(_run)
_mutation = mutation(args=_ARGS)(_run)
_action = action(args=_ARGS)(_run)


@query(args={"tmp": v.string()})
def _reads_and_imports(ctx: Any, args: Any) -> str:
    """Reading files stays allowed, and so does an import that would write
    its bytecode cache (the refused write is skipped, as on a read-only disk)."""
    sys.path.insert(0, args["tmp"])
    try:
        import hardening_fresh_module  # type: ignore[import-not-found]
    finally:
        sys.path.remove(args["tmp"])
    text = pathlib.Path(args["tmp"], "hardening_fresh_module.py").read_text()
    return f"{hardening_fresh_module.VALUE} {len(text)}"


@pytest.fixture
def executor() -> Executor:
    registry = FunctionRegistry(
        {
            "g:q": _query,
            "g:m": _mutation,
            "g:a": _action,
            "g:reads": _reads_and_imports,
        }
    )
    return Executor(Database(SqliteStore(":memory:")), registry)


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    (tmp_path / "r.txt").write_text("r")
    (tmp_path / "a").write_text("a")
    (tmp_path / "d").mkdir()
    return tmp_path


@pytest.mark.parametrize("fn", ["g:q", "g:m"])
@pytest.mark.parametrize("op", sorted(OPERATIONS))
def test_refused_in_queries_and_mutations(executor: Executor, tmp: Path, fn: str, op: str) -> None:
    before = sorted(p.name for p in tmp.iterdir())
    result = executor.call(fn, {"op": op, "tmp": str(tmp)})
    assert not result.ok
    message = result.logged_message or ""
    assert message.startswith("Uncaught ") and ": NON_DETERMINISTIC: a " in message, message
    assert "from an action (@action)" in message
    assert isinstance(result.error, NonDeterministicError)
    assert sorted(p.name for p in tmp.iterdir()) == before  # nothing was written


@pytest.mark.parametrize("op", sorted(set(OPERATIONS) - {"socket.getaddrinfo"}))
def test_the_same_operations_work_in_an_action(executor: Executor, tmp: Path, op: str) -> None:
    result = executor.call("g:a", {"op": op, "tmp": str(tmp)})
    assert result.ok and result.value == "done", result.error_message


def test_an_in_memory_sqlite_database_is_not_a_file_write() -> None:
    with frozen(FROZEN, seed=1, kind="query"):
        with sqlite3.connect(":memory:") as conn:
            assert conn.execute("select 41 + 1").fetchone() == (42,)
        conn.close()


def test_reads_and_imports_still_work_in_a_query(executor: Executor, tmp: Path) -> None:
    (tmp / "hardening_fresh_module.py").write_text("VALUE = 41 + 1\n")
    result = executor.call("g:reads", {"tmp": str(tmp)})
    assert result.ok and result.value == "42 15", result.error_message
    sys.modules.pop("hardening_fresh_module", None)


def test_a_mutation_on_a_file_store_commits_under_the_guard(tmp_path: Path) -> None:
    """The platform writes its files (SQLite, WAL) outside user code."""

    @mutation
    def write(ctx: Any, args: Any) -> str:
        doc_id: str = ctx.db.insert("notes", {"at": time.strftime("%Y")})
        return doc_id

    store = SqliteStore(str(tmp_path / "data.sqlite"))
    ex = Executor(Database(store), FunctionRegistry({"n:write": write}))
    try:
        result = ex.call("n:write", {})
        assert result.ok, result.error_message
    finally:
        store.close()


@pytest.mark.parametrize(
    ("event", "args"),
    [
        ("os.fork", ()),
        ("os.forkpty", ()),
        ("os.exec", ("/bin/true", ["true"], None)),
        ("os.spawn", (0, "/bin/true", ["true"], None)),
        ("os.kill", (1, 9)),
        ("os.truncate", ("/x", 0)),
        ("os.chmod", ("/x", 0o777, -1)),
        ("os.symlink", ("/x", "/y", -1)),
        ("shutil.copytree", ("/x", "/y")),
    ],
)
def test_processes_and_file_changes_not_run_here_are_classified(
    event: str, args: tuple[Any, ...]
) -> None:
    # Forking or exec'ing the test process to prove a refusal would replace
    # it if the guard failed; the classification is what the hook consults.
    assert refusal(event, args) is not None


def test_reads_are_not_refused() -> None:
    assert refusal("open", ("/x", "r", os.O_RDONLY)) is None
    assert refusal("open", ("/x", None, os.O_RDONLY)) is None
    assert refusal("os.listdir", ("/x",)) is None
