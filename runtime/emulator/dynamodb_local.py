"""Start DynamoDB Local (AWS's emulator) on a free loopback port, and stop it.

`aws-local` starts one when no DynamoDB endpoint is configured, and the tests
start one per session. The jar comes from the npm package
`amplify-dynamodb-simulator`, installed by `make dynamodb-local` under
`$PYCONVEX_CACHE/dynamodb-local` (default `.cache/`). DynamoDB Local listens
on every interface whatever it is told; it is only ever spoken to on
127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = [
    "PACKAGE",
    "DynamoDBLocalMissing",
    "cache_dir",
    "find_jar",
    "require_jar",
    "running_dynamodb_local",
]

PACKAGE = "amplify-dynamodb-simulator"
_ATTEMPTS = 3


class DynamoDBLocalMissing(RuntimeError):
    """The jar is not installed (or Java is missing): the message says what to run."""


def cache_dir() -> Path:
    """Where `make dynamodb-local` installs: $PYCONVEX_CACHE, else `.cache/`
    of the working directory (the Makefile exports the repository's)."""
    return Path(os.environ.get("PYCONVEX_CACHE") or Path.cwd() / ".cache")


def find_jar(cache: Path | None = None) -> Path | None:
    """DynamoDBLocal.jar inside the installed package (at `emulator/` today)."""
    base = (cache or cache_dir()) / "dynamodb-local" / "node_modules" / PACKAGE
    preferred = base / "emulator" / "DynamoDBLocal.jar"
    if preferred.is_file():
        return preferred
    jars = sorted(base.rglob("DynamoDBLocal.jar")) if base.is_dir() else []
    return jars[0] if jars else None


def require_jar(cache: Path | None = None) -> Path:
    jar = find_jar(cache)
    if jar is None:
        where = (cache or cache_dir()) / "dynamodb-local"
        raise DynamoDBLocalMissing(
            f"DynamoDB Local is not installed under {where}: run `make dynamodb-local` "
            "(Node.js and npm needed), set PYCONVEX_CACHE to where it is installed, or "
            "name a running DynamoDB with --dynamodb-endpoint / AWS_ENDPOINT_URL"
        )
    return jar


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(endpoint, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # it answered (DynamoDB Local says 400 to a bare GET)
    except OSError:
        return False


def _tail(log: IO[bytes]) -> str:
    log.flush()
    log.seek(0)
    return log.read().decode(errors="replace")[-3000:]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@contextlib.contextmanager
def running_dynamodb_local(jar: Path | None = None, timeout: float = 60.0) -> Iterator[str]:
    """Start DynamoDB Local in memory; yield `http://127.0.0.1:PORT`; always stop it.

    The port is picked free just before the start; if another process takes it
    first, the start is retried on another port (3 tries)."""
    jar = jar or require_jar()
    java = shutil.which("java")
    if java is None:
        raise DynamoDBLocalMissing("DynamoDB Local needs Java 17+ (`java` is not on PATH)")
    with tempfile.TemporaryFile() as log:
        for attempt in range(_ATTEMPTS):
            port = _free_port()
            endpoint = f"http://127.0.0.1:{port}"
            cmd = [
                java,
                f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
                "-jar",
                str(jar),
                "-inMemory",
                "-port",
                str(port),
                "-disableTelemetry",
            ]
            # Its own session: a Ctrl-C reaches the harness, which stops it in order.
            proc = subprocess.Popen(
                cmd, cwd=jar.parent, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
            try:
                deadline = time.monotonic() + timeout
                while not _answers(endpoint):
                    if proc.poll() is not None:
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"DynamoDB Local did not answer on {endpoint} within {timeout:.0f} s "
                            f"({' '.join(cmd)}); its output:\n{_tail(log)}"
                        )
                    time.sleep(0.1)
                else:
                    yield endpoint
                    return
                if attempt == _ATTEMPTS - 1:
                    raise RuntimeError(
                        f"DynamoDB Local exited with {proc.returncode} ({' '.join(cmd)}); "
                        f"its output:\n{_tail(log)}"
                    )
            finally:
                _stop(proc)
