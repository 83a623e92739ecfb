"""The harness's S3: where the Lambdas keep files' bytes, and where clients read them.

On AWS, file URLs are CloudFront's `/api/storage/<key>`, served from the files
bucket's objects `api/storage/<key>` (template.yaml). Here the bucket is moto's
S3 server on loopback (in this process), or the S3 at `AWS_ENDPOINT_URL_S3`
(or LocalStack's with `--localstack`); file URLs are the bucket's own
path-style URLs, readable without credentials through a bucket policy that
stands in for CloudFront (GetObject on `api/storage/*` only). Objects keep their
Content-Type, and S3 answers Range requests, as CloudFront does.

moto's server keeps the objects in memory: a restarted harness has lost the
files its table still lists (the table lives on in a shared DynamoDB Local).

LocalStack (`--localstack`: the endpoints localstack-client names, e.g. from
LOCALSTACK_HOST) runs without Docker too, in its own virtualenv
(.venv-localstack, which `make test` installs), as `python -m
localstack.runtime.main` with SERVICES=s3 and GATEWAY_LISTEN=127.0.0.1:<port>
(tests/support/localstack.py): localstack-core[runtime] 4.9.2 on Python 3.11
(the 2026 releases need 3.12), with cbor2<5.7, pyopenssl<24.3, cryptography<44
and service_identity<24.3 (newer ones break its imports); those pins clash with
this project's, hence a venv of its own. Its S3 answers path-style URLs, as
boto3 addresses a custom endpoint and as the harness's file URLs are, and
takes no multipart part under 5 MiB but the last (a constant there, not a
setting). Its DynamoDB does not answer without Docker here (it fronts a
DynamoDB Local of its own that it does not start), so pair `--localstack` with
`--dynamodb-endpoint` (DynamoDB Local): that endpoint wins for DynamoDB, and S3
still comes from LocalStack.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from typing import Any

from runtime.aws.backend import FILES_PREFIX

from .moto_server import running_moto_server

__all__ = ["S3Missing", "files_env", "running_s3", "s3_endpoint", "setup_bucket"]


class S3Missing(RuntimeError):
    """No S3 to start: moto's server needs its extra (flask)."""


def s3_endpoint(localstack: bool, environ: Mapping[str, str]) -> str | None:
    """The S3 to use: LocalStack's (`--localstack`), `AWS_ENDPOINT_URL_S3`;
    None: start moto's server."""
    if localstack:
        from localstack_client.config import get_service_endpoint  # type: ignore[import-untyped]

        endpoint: str | None = get_service_endpoint("s3")
        if not endpoint:
            raise SystemExit("localstack-client names no S3 endpoint (see its settings)")
        return endpoint
    return environ.get("AWS_ENDPOINT_URL_S3") or None


@contextlib.contextmanager
def running_s3(localstack: bool = False) -> Iterator[str]:
    """Yield the S3 endpoint to use; when none is configured, moto's S3 server
    on a free loopback port, stopped on exit."""
    endpoint = s3_endpoint(localstack, os.environ)
    if endpoint:
        yield endpoint
        return
    try:
        import moto.server  # noqa: F401  (its server extra, which running_moto_server needs)
    except ImportError as e:  # moto without its server extra
        raise S3Missing(
            f"the harness's S3 is moto's server, which cannot start ({e}): install it with "
            "`pip install 'moto[server]'` (the dev extra has it), or point "
            "AWS_ENDPOINT_URL_S3 at an S3"
        ) from None
    with running_moto_server() as endpoint:
        yield endpoint


def _public_read_policy(bucket: str) -> str:
    """CloudFront's part: anyone may read the files, nothing else."""
    statement = {
        "Sid": "ReadFilesAsCloudFrontWould",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/{FILES_PREFIX}*",
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def setup_bucket(client: Any, bucket: str) -> None:
    """Create the files bucket if missing, readable under `api/storage/` as
    through CloudFront."""
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket=bucket)
    client.put_bucket_policy(Bucket=bucket, Policy=_public_read_policy(bucket))


def files_env(endpoint: str, bucket: str) -> dict[str, str]:
    """The Lambdas' environment for files: the bucket, where its files are read
    (path-style), and the S3 endpoint their S3 clients reach."""
    endpoint = endpoint.rstrip("/")
    return {
        "PYCONVEX_FILES_BUCKET": bucket,
        "PYCONVEX_FILES_URL": f"{endpoint}/{bucket}/{FILES_PREFIX.rstrip('/')}",
        "AWS_ENDPOINT_URL_S3": endpoint,
    }
