"""Start the dev server as a subprocess on free loopback ports, and stop it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

ROOT = Path(__file__).resolve().parents[2]
APP_FUNCTIONS = ROOT / "functions"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class DevServer:
    url: str
    site_url: str
    data: Path
    functions: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def admin_key(self) -> str:
        return (self.data / "admin_key").read_text().strip()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def cli(
        self, *args: str, timeout: float = 60, input: bytes | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run `python -m runtime ARGS --url ... --data ...` against this server."""
        return subprocess.run(
            [sys.executable, "-m", "runtime", *args, "--url", self.url, "--data", str(self.data)],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )

    def stop(self, timeout: float = 10) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


def start_dev_server(
    functions: Path,
    data: Path,
    *,
    prod: bool = False,
    timeout: float = 30,
    extra: list[str] | None = None,
    port: int | None = None,
    site_port: int | None = None,
    env: dict[str, str] | None = None,
    codegen: bool = False,
) -> DevServer:
    """`codegen`: let the server write <functions>/_generated (off by
    default: most test apps live in the repository)."""
    port, site_port = port or free_port(), site_port or free_port()
    data.mkdir(parents=True, exist_ok=True)
    log_path = data.parent / f"{data.name}-server.log"
    log = open(log_path, "wb")  # noqa: SIM115 - handed to the child
    cmd = [
        sys.executable, "-m", "runtime", "dev",
        "--functions", str(functions), "--port", str(port),
        "--site-port", str(site_port), "--data", str(data),
        *(["--prod"] if prod else []), *(extra or []),
    ]  # fmt: skip
    if not any(a in ("--env-file", "--no-env-file") for a in extra or []):
        cmd += ["--env-file", str(data.parent / f"{data.name}.env.local")]  # never the repo's
    if not codegen:
        cmd.append("--no-codegen")
    child_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=child_env)
    log.close()
    server = DevServer(
        f"http://127.0.0.1:{port}",
        f"http://127.0.0.1:{site_port}",
        data,
        functions,
        process,
        log_path,
    )
    wait_until_up(server, "the dev server", timeout)
    return server


class _Started(Protocol):
    url: str
    process: subprocess.Popen[bytes]

    def log(self) -> str: ...

    def stop(self, timeout: float = ...) -> int: ...


def wait_until_up(server: _Started, what: str, timeout: float) -> None:
    """Wait until `GET <url>/version` answers 200; else stop it and raise
    with its log (also if it exits first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{what} exited with {server.process.returncode}:\n{server.log()}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(server.url + "/version", timeout=2) as answer,
        ):
            if answer.status == 200:
                return
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"{what} did not answer within {timeout} s:\n{server.log()}")


@contextlib.contextmanager
def dev_server(functions: Path, data: Path, **kwargs: object) -> Iterator[DevServer]:
    server = start_dev_server(functions, data, **kwargs)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()
