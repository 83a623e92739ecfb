"""What a Lambda's cold start imports: PyJWT (and the cryptography package
under it, about 50 ms here) loads with the first user token, not with the
handlers, so an app without auth, or a call without a token, never pays it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.devserver import ROOT


@pytest.mark.parametrize("handler", ["runtime.aws.http", "runtime.aws.ws", "runtime.aws.stream"])
def test_the_handlers_import_no_jwt_library(handler: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", f"import sys, {handler}; print(sorted("
         "m for m in ('jwt', 'cryptography') if m in sys.modules))"],
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=True,
    )  # fmt: skip
    assert done.stdout.strip() == "[]"


def _run(code: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT,
        env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize("handler", ["runtime.aws.ws", "runtime.aws.stream"])
def test_the_socket_and_stream_handlers_import_no_powertools_event_classes(handler: str) -> None:
    """They read five fields of their event as a plain dict (~20 ms of imports saved)."""
    code = f"import sys, {handler}; print('aws_lambda_powertools.utilities.data_classes' in sys.modules)"
    assert _run(code) == "False"


def test_importing_the_handlers_builds_no_https_opener() -> None:
    """The auth module's HTTPS opener is built on the first key-set fetch,
    not at import: on Python 3.12 (Lambda's) building it loads the CA
    bundle, ~20 ms of every cold start."""
    code = (
        "import urllib.request\n"
        "n = []\n"
        "real = urllib.request.build_opener\n"
        "def counted(*a):\n"
        "    n.append(1)\n"
        "    return real(*a)\n"
        "urllib.request.build_opener = counted\n"
        "import runtime.aws.http, runtime.aws.ws, runtime.aws.stream\n"
        "print(len(n))\n"
    )
    assert _run(code) == "0"


@pytest.mark.dynamodb_local
def test_a_containers_backend_makes_no_client_it_has_not_used(dynamodb_local_endpoint: str) -> None:
    """A Lambda container's backend, with a files bucket and a jobs queue
    configured as template.yaml deploys them, and its store-backed sync make
    the DynamoDB client only, the lean one (botocore's client machinery and
    boto3 are never imported: ~150 ms of a cold start); S3, SQS, Scheduler
    and Management API clients come with their first call (~50 ms each of a
    cold start otherwise)."""
    import uuid

    from runtime.store.dynamodb import create_table
    from tests.support.aws import dynamodb_local_client

    table = f"cold{uuid.uuid4().hex[:8]}"
    create_table(dynamodb_local_client(dynamodb_local_endpoint), table)
    env = {
        **os.environ,
        "PYCONVEX_TABLE": table,
        "PYCONVEX_FUNCTIONS": str(ROOT / "tests" / "integration" / "apps" / "chat"),
        "PYCONVEX_FILES_BUCKET": "files",
        "PYCONVEX_JOBS_QUEUE_URL": "http://127.0.0.1:9/000000000000/jobs.fifo",
        "AWS_ENDPOINT_URL": dynamodb_local_endpoint,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    code = (
        "import sys\n"
        "from runtime.aws.backend import lambda_backend\n"
        "from runtime.aws.dispatch import dispatcher_for\n"
        "backend, settings = lambda_backend()\n"
        "assert dispatcher_for(settings) is not None\n"
        "assert backend.files is not None\n"
        "from runtime.aws.sync import sync_for\n"
        "sync_for('https://example.invalid/stage', 'cold')\n"
        "print(type(backend.store.client).__name__, 'boto3' in sys.modules,"
        " 'botocore.client' in sys.modules)\n"
    )
    assert _run(code, env) == "DynamoDBClient False False"
