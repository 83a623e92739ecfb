"""Which operations a query or mutation may not perform, found by audit events.

Queries and mutations are re-run (OCC retries, live queries), so anything
they do besides reading and writing through `ctx.db` happens again on each
run and makes the result depend on the outside world. CPython raises an
audit event (PEP 578) before each such operation; one process-wide hook
(`determinism.install` adds it) asks `refusal(event, args)` whether the event
is one, and raises while a deterministic function runs on that thread:

- the network: connecting, resolving names, sending, binding;
- other processes: `subprocess`, `os.system`, `os.exec*`, `os.spawn*`,
  `os.posix_spawn*`, `os.fork`, signals (`os.kill`);
- the file system, when written: `open` for writing, appending, creating or
  truncating (also `os.open` with such flags), removing, renaming, making
  directories, changing modes and times, `shutil`'s tree copies and moves,
  opening a SQLite database file. Reading files stays allowed (imports read).

Starting a thread is refused too (`determinism` patches `threading`, which
raises no audit event): a thread would run outside the guard and the frozen
clock.

File refusals are also `PermissionError`s, so Python's own best-effort
writes keep working: an import inside a function that cannot write its
`__pycache__` bytecode skips it, as it would on a read-only disk.

The hook reads one thread-local flag, so it costs a set lookup outside
functions and never touches the platform's own threads; the platform's store
calls from inside a function lift it (`determinism.platform_io`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from runtime.errors import PlatformError

__all__ = ["NonDeterministicError", "RefusedFileWrite", "error", "hook", "refusal"]


class NonDeterministicError(PlatformError):
    code = "NON_DETERMINISTIC"


class RefusedFileWrite(NonDeterministicError, PermissionError):
    """A file-system write refused in a query or mutation (an OSError too, so
    code that tolerates an unwritable disk, like bytecode caching, goes on)."""


_NETWORK = frozenset(
    {
        "socket.connect",
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyaddr",
        "socket.getnameinfo",
        "socket.sendto",
        "socket.sendmsg",
        "socket.bind",
    }
)
_PROCESSES = frozenset(
    {
        "subprocess.Popen",
        "os.system",
        "os.exec",
        "os.spawn",
        "os.posix_spawn",
        "os.fork",
        "os.forkpty",
        "os.startfile",
        "os.kill",
        "os.killpg",
        "pty.spawn",
    }
)
_FILE_CHANGES = frozenset(
    {
        "os.remove",
        "os.rename",
        "os.mkdir",
        "os.rmdir",
        "os.truncate",
        "os.chmod",
        "os.chown",
        "os.chflags",
        "os.lchflags",
        "os.link",
        "os.symlink",
        "os.utime",
        "os.mkfifo",
        "os.mknod",
        "os.setxattr",
        "os.removexattr",
        "shutil.copyfile",
        "shutil.copymode",
        "shutil.copystat",
        "shutil.copytree",
        "shutil.move",
        "shutil.rmtree",
        "shutil.chown",
        "shutil.make_archive",
        "shutil.unpack_archive",
        "sqlite3.connect",
    }
)
_WRITE_FLAGS = (
    os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND | getattr(os, "O_EXCL", 0)
)


def refusal(event: str, args: tuple[Any, ...]) -> tuple[str, str] | None:
    """(category, what) when `event` is an operation a deterministic function
    may not perform, else None."""
    if event == "open":
        flags = args[2] if len(args) > 2 else 0
        mode = args[1] if len(args) > 1 else None
        writes = (isinstance(flags, int) and flags & _WRITE_FLAGS) or (
            isinstance(mode, str) and any(c in mode for c in "wax+")
        )
        return ("file", f"open({args[0]!r}, {mode or 'flags'!r}) for writing") if writes else None
    if event in _NETWORK:
        return "network", event
    if event in _PROCESSES:
        return "process", event
    if event == "sqlite3.connect" and args and str(args[0]) in _IN_MEMORY:
        return None
    if event in _FILE_CHANGES:
        return "file", event
    return None


_IN_MEMORY = frozenset({":memory:", ""})


_WHAT = {
    "network": "cannot use the network",
    "process": "cannot start or signal processes",
    "file": "cannot write files",
    "thread": "cannot start threads",
}


def error(kind: str, category: str, what: str) -> NonDeterministicError:
    """The refusal of `what` (a `category` of `_WHAT`) in a `kind` function."""
    message = (
        f"a {kind} {_WHAT[category]} ({what}): queries and mutations are "
        "deterministic transactions, re-run on conflicts and when their data "
        "changes. Do this from an action (@action), and pass results to a "
        "mutation with ctx.run_mutation."
    )
    if category == "file":
        return RefusedFileWrite(message, operation=what)
    return NonDeterministicError(message, operation=what)


def hook(active_kind: Callable[[], str | None]) -> Callable[[str, tuple[Any, ...]], None]:
    """The audit hook: raises for a refused event while `active_kind()` names
    the kind of deterministic function running on this thread."""

    def audit(event: str, args: tuple[Any, ...]) -> None:
        kind = active_kind()
        if kind is None:
            return
        found = refusal(event, args)
        if found is None:
            return
        raise error(kind, *found)

    return audit
