"""Start `python -m runtime aws-local` as a subprocess on a free loopback port,
and stop it (SIGINT, as Ctrl-C does)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.devserver import free_port, wait_until_up

ROOT = Path(__file__).resolve().parents[2]

# The subprocess sees these and nothing of the caller's AWS settings: its
# DynamoDB and S3 are the ones it is given (or the ones it starts).
_DROPPED = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_DYNAMODB_STREAMS",
            "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN", "PYCONVEX_WS_ENDPOINT")  # fmt: skip
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class AwsLocal:
    url: str
    data: Path
    functions: Path
    table: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[len("http") :]

    @property
    def admin_key(self) -> str:
        return (self.data / "admin_key").read_text().strip()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


def start_aws_local(
    functions: Path,
    data: Path,
    *,
    table: str,
    dynamodb_endpoint: str | None = None,
    timeout: float = 90,
    port: int | None = None,
    extra: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> AwsLocal:
    """Start it and wait until `GET /version` answers 200 (through the HTTP
    Lambda, so the whole chain is up). Without `dynamodb_endpoint` it starts
    its own DynamoDB Local."""
    port = port or free_port()
    data.mkdir(parents=True, exist_ok=True)
    log_path = data.parent / f"{data.name}-aws-local.log"
    log = open(log_path, "wb")  # noqa: SIM115 - handed to the child
    cmd = [
        sys.executable, "-m", "runtime", "aws-local",
        "--functions", str(functions), "--port", str(port), "--data", str(data),
        "--table", table,
        *(["--dynamodb-endpoint", dynamodb_endpoint] if dynamodb_endpoint else []),
        *(extra or []),
    ]  # fmt: skip
    child_env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
    child_env.update({"PYTHONUNBUFFERED": "1", **AWS_ENV, **(env or {})})
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=child_env)
    log.close()
    server = AwsLocal(f"http://127.0.0.1:{port}", data, functions, table, process, log_path)
    wait_until_up(server, "aws-local", timeout)
    return server


@contextlib.contextmanager
def aws_local(functions: Path, data: Path, **kwargs: object) -> Iterator[AwsLocal]:
    server = start_aws_local(functions, data, **kwargs)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()
