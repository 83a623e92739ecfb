"""LocalStack's S3 for tests: `python -m localstack.runtime.main` from the
virtualenv `make test` builds (.venv-localstack: its pins clash with .venv's,
runtime/emulator/s3.py says which and why), without Docker, on 127.0.0.1 and a
free port, its files under a tmp dir, stopped at the end of the session.

Missing venv: the tests fail and say to run `make test` (a skip would hide
that the LocalStack half of the S3 conformance never ran)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.devserver import free_port

ROOT = Path(__file__).resolve().parents[2]
LOCALSTACK_PYTHON = ROOT / ".venv-localstack" / "bin" / "python"
START_SECONDS = 90
STOP_SECONDS = 15


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_localstack/health", timeout=2) as r:
            services = json.load(r).get("services", {})
    except (OSError, ValueError):
        return False
    return services.get("s3") in ("available", "running")


@contextlib.contextmanager
def running_localstack() -> Iterator[str]:
    """Yield LocalStack's endpoint (S3 only), http://127.0.0.1:PORT."""
    if not LOCALSTACK_PYTHON.exists():
        pytest.fail(
            f"LocalStack's virtualenv is missing ({LOCALSTACK_PYTHON}): run `make test`, "
            "which installs it",
            pytrace=False,
        )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="localstack-") as tmp:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LOCALSTACK"))},
            "SERVICES": "s3",
            "GATEWAY_LISTEN": f"127.0.0.1:{port}",
            "LOCALSTACK_HOST": f"127.0.0.1:{port}",
            "DNS_ADDRESS": "0",  # no DNS server (it would want port 53)
            "PERSISTENCE": "0",
            "DISABLE_EVENTS": "1",  # no analytics
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "LOCALSTACK_VOLUME_DIR": str(Path(tmp) / "volume"),
            "TMPDIR": tmp,  # its s3 storage and other scratch files
        }
        log_path = Path(tmp) / "localstack.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [str(LOCALSTACK_PYTHON), "-m", "localstack.runtime.main"],
                env=env,
                cwd=tmp,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + START_SECONDS
            while not _healthy(url):
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"LocalStack did not start (exit {process.poll()}):\n"
                        + log_path.read_text(errors="replace")[-4000:],
                        pytrace=False,
                    )
                time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


@pytest.fixture(scope="session")
def localstack_endpoint() -> Iterator[str]:
    with running_localstack() as url:
        yield url
