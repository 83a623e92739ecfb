"""Run DynamoDB Local (AWS's emulator) for the tests, on a free loopback port.

The jar comes from the npm package `amplify-dynamodb-simulator`, installed by
`make dynamodb-local` (scripts/install-dynamodb-local.sh) under
`$PYCONVEX_CACHE/dynamodb-local` (default `<repo>/.cache`). If it is missing
and `npm` is on PATH, `running_dynamodb_local` runs that same script first,
saying so; without npm it fails with the command to run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["cache_dir", "find_jar", "install_dynamodb_local", "running_dynamodb_local"]

ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = ROOT / "scripts" / "install-dynamodb-local.sh"
PACKAGE = "amplify-dynamodb-simulator"


def cache_dir() -> Path:
    return Path(os.environ.get("PYCONVEX_CACHE") or ROOT / ".cache")


def find_jar() -> Path | None:
    """DynamoDBLocal.jar inside the installed package (at `emulator/` today)."""
    base = cache_dir() / "dynamodb-local" / "node_modules" / PACKAGE
    preferred = base / "emulator" / "DynamoDBLocal.jar"
    if preferred.is_file():
        return preferred
    jars = sorted(base.rglob("DynamoDBLocal.jar")) if base.is_dir() else []
    return jars[0] if jars else None


def install_dynamodb_local() -> Path:
    """The jar, installing it with the Makefile's script if npm is available."""
    jar = find_jar()
    if jar is not None:
        return jar
    if shutil.which("npm") is None:
        raise RuntimeError(
            f"DynamoDB Local is not installed under {cache_dir() / 'dynamodb-local'} and npm is "
            "not on PATH: run `make dynamodb-local` (Node.js and npm needed), or set "
            "SKIP_DYNAMODB_LOCAL=1 to skip its tests"
        )
    cmd = ["bash", str(INSTALL_SCRIPT)]
    print(f"DynamoDB Local is missing; running: {' '.join(cmd)}", file=sys.stderr, flush=True)
    env = {**os.environ, "PYCONVEX_CACHE": str(cache_dir())}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=False)
    jar = find_jar()
    if done.returncode != 0 or jar is None:
        raise RuntimeError(
            f"installing DynamoDB Local failed (exit {done.returncode}); run `make dynamodb-local` "
            f"to see why:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
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
def running_dynamodb_local(timeout: float = 60.0) -> Iterator[str]:
    """Start DynamoDB Local in memory; yield `http://127.0.0.1:PORT`; always stop it.

    The port is picked free just before the start; if another process takes it
    first, the start is retried on another port (3 tries)."""
    jar = install_dynamodb_local()
    java = shutil.which("java")
    if java is None:
        raise RuntimeError("DynamoDB Local needs Java 17+ (`java` is not on PATH)")
    with tempfile.TemporaryFile() as log:
        for attempt in range(3):
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
            proc = subprocess.Popen(cmd, cwd=jar.parent, stdout=log, stderr=subprocess.STDOUT)
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
                if attempt == 2:
                    raise RuntimeError(
                        f"DynamoDB Local exited with {proc.returncode} ({' '.join(cmd)}); "
                        f"its output:\n{_tail(log)}"
                    )
            finally:
                _stop(proc)
