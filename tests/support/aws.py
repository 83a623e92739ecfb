"""DynamoDB stores for tests: in-process under moto, and on DynamoDB Local.

Both generators yield a `DynamoDBStore` on a fresh table and tear it down when
resumed (the `store` fixture in tests/conftest.py drives them).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from runtime.store.port import Store

__all__ = [
    "FAKE_AWS_ENV",
    "dynamodb_local_client",
    "dynamodb_local_store",
    "fake_aws_env",
    "http_lambda",
    "moto_dynamodb_store",
    "secrets_manager",
    "stream_records",
]

REGION = "us-east-1"

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    # moto serves DynamoDB Streams in-process only with this (DESIGN.md section 8).
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}


@contextmanager
def fake_aws_env(**extra: str) -> Iterator[None]:
    """Fake credentials and region in os.environ, restored afterwards."""
    values = {**FAKE_AWS_ENV, **extra}
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, old in saved.items():
            if old is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = old


def moto_dynamodb_store(*, stream: bool = True) -> Iterator[Store]:
    """A store on a fresh table inside moto's `mock_aws()`. `stream=False`:
    no change feed (moto keeps a streamed table's records in the table, and
    deep-copies the table once per entry of every TransactWriteItems: many
    writes, as large commits make, get slower and slower)."""
    import boto3
    from moto import mock_aws

    from runtime.store.dynamodb import DynamoDBStore, create_table

    with fake_aws_env(), mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        streams = boto3.client("dynamodbstreams", region_name=REGION)
        name = f"t{uuid.uuid4().hex[:12]}"
        create_table(client, name, stream=stream)
        # moto caps TransactGetItems at 25 keys (AWS: 100), and its tables are
        # not safe to write from several threads (a large commit's batches
        # run in parallel elsewhere)
        store = DynamoDBStore(
            name,
            client=client,
            streams_client=streams,
            transact_get_keys=25,
            large_commit_threads=1,
        )
        try:
            yield store
        finally:
            store.close()


def dynamodb_local_client(endpoint: str, service: str = "dynamodb") -> Any:
    """A boto3 client of `service` on DynamoDB Local (fake credentials: DynamoDB
    Local keeps one set of tables per access key and region)."""
    import boto3

    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def lean_dynamodb_local_client(endpoint: str) -> Any:
    """The Lambdas' own DynamoDB client (runtime/aws/dynamodb_client.py) on
    DynamoDB Local, with the same fake credentials as dynamodb_local_client."""
    from runtime.aws.dynamodb_client import DynamoDBClient
    from runtime.aws.signed_http import SignedHttp, StaticCredentials
    from runtime.aws.sigv4 import Credentials

    credentials = StaticCredentials(Credentials("local", "local"))
    return DynamoDBClient(
        SignedHttp(endpoint, region=REGION, service="dynamodb", credentials=credentials)
    )


def lean_s3_client(endpoint: str) -> Any:
    """The Lambdas' own S3 client (runtime/aws/s3_client.py) at `endpoint`
    (moto's server, LocalStack), path-style, with the harness's credentials."""
    from runtime.aws.s3_client import S3Client
    from runtime.aws.signed_http import StaticCredentials
    from runtime.aws.sigv4 import Credentials
    from tests.support.awslocal import AWS_ENV

    credentials = Credentials(AWS_ENV["AWS_ACCESS_KEY_ID"], AWS_ENV["AWS_SECRET_ACCESS_KEY"])
    return S3Client(
        region=AWS_ENV["AWS_DEFAULT_REGION"],
        credentials=StaticCredentials(credentials),
        endpoint=endpoint,
    )


def observe_dynamodb_calls(client: Any, observe: Callable[[str, dict[str, Any]], None]) -> None:
    """Have `observe(operation, params)` called before each call of `client`:
    the lean client's observers, or botocore's event for its clients."""
    if hasattr(client, "observers"):
        client.observers.append(observe)
        return

    def hook(model: Any, params: dict[str, Any], **_: Any) -> None:
        observe(model.name, params)

    client.meta.events.register("provide-client-params.dynamodb.*", hook)


def dynamodb_local_store(endpoint: str, table_name: str, *, stream: bool = True) -> Iterator[Store]:
    """A store on a fresh table `table_name` of the DynamoDB Local at `endpoint`,
    through the client the Lambdas use (the lean one: moto's stores cover
    botocore's). `stream=False`: no change feed (`create_table` says why a
    test wants that)."""
    from runtime.store.dynamodb import DynamoDBStore, create_table

    admin = dynamodb_local_client(endpoint)
    create_table(admin, table_name, stream=stream)
    client = lean_dynamodb_local_client(endpoint)
    store = DynamoDBStore(
        table_name,
        client=client,
        streams_client=dynamodb_local_client(endpoint, "dynamodbstreams"),
    )
    try:
        yield store
    finally:
        store.close()
        client.close()
        admin.delete_table(TableName=table_name)


@contextmanager
def secrets_manager() -> Iterator[Any]:
    """Secrets Manager under moto (no real one runs here), while requests to
    other endpoints, such as DynamoDB Local's, go out as they would: moto
    answers only AWS's own host names. Yields a secretsmanager client. The
    credentials stay the caller's (DynamoDB Local keeps tables per key)."""
    import boto3
    from moto import mock_aws

    with mock_aws(config={"core": {"mock_credentials": False}}):
        yield boto3.client(
            "secretsmanager",
            region_name=REGION,
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )


@contextmanager
def http_lambda(
    endpoint: str, table: str, functions: Path, **env: str
) -> Iterator[Callable[[dict[str, Any], Any], Any]]:
    """The HTTP Lambda handler of a fresh container on DynamoDB Local's
    `table` (the schema pushed already), with the template's settings and
    `env` in os.environ; the container dropped afterwards."""
    import runtime.aws.http as http_module
    from runtime.aws import backend as lambda_backend

    settings = {
        "PYCONVEX_TABLE": table,
        "PYCONVEX_FUNCTIONS": str(functions),
        "PYCONVEX_PROD": "0",
        # DynamoDB's endpoints only: every other service (Secrets Manager)
        # goes where AWS's would.
        "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
        "AWS_ENDPOINT_URL_DYNAMODB_STREAMS": endpoint,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "POWERTOOLS_METRICS_NAMESPACE": "pyconvex-tests",
    }
    with fake_aws_env(**settings, **env):
        lambda_backend.reset()
        http_module.reset()
        try:
            yield http_module.handler
        finally:
            http_module.reset()
            lambda_backend.reset()


def stream_records(client: Any, streams: Any, table: str) -> list[dict[str, Any]]:
    """Every record of `table`'s stream so far, shard by shard from the start
    (`client`: DynamoDB, `streams`: DynamoDB Streams, boto3 clients)."""
    arn = client.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    out: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        it = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while it:
            page = streams.get_records(ShardIterator=it, Limit=1000)
            out += page["Records"]
            if not page["Records"]:
                break
            it = page.get("NextShardIterator")
    return out
