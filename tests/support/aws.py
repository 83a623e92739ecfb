"""DynamoDB stores for tests: in-process under moto, and on DynamoDB Local.

Both generators yield a `DynamoDBStore` on a fresh table and tear it down when
resumed (the `store` fixture in tests/conftest.py drives them).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from runtime.store.port import Store

__all__ = [
    "FAKE_AWS_ENV",
    "dynamodb_local_client",
    "dynamodb_local_store",
    "fake_aws_env",
    "moto_dynamodb_store",
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


def moto_dynamodb_store() -> Iterator[Store]:
    """A store on a fresh table inside moto's `mock_aws()`."""
    import boto3
    from moto import mock_aws

    from runtime.store.dynamodb import DynamoDBStore, create_table

    with fake_aws_env(), mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        streams = boto3.client("dynamodbstreams", region_name=REGION)
        name = f"t{uuid.uuid4().hex[:12]}"
        create_table(client, name)
        store = DynamoDBStore(name, client=client, streams_client=streams)
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


def dynamodb_local_store(endpoint: str, table_name: str) -> Iterator[Store]:
    """A store on a fresh table `table_name` of the DynamoDB Local at `endpoint`."""
    from runtime.store.dynamodb import DynamoDBStore, create_table

    client = dynamodb_local_client(endpoint)
    create_table(client, table_name)
    store = DynamoDBStore(
        table_name,
        client=client,
        streams_client=dynamodb_local_client(endpoint, "dynamodbstreams"),
    )
    try:
        yield store
    finally:
        store.close()
        client.delete_table(TableName=table_name)
