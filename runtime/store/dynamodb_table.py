"""The DynamoDB adapter's table: creation (idempotent) and its PynamoDB model.

`create_table(client, name)` makes the one table the adapter needs:
PAY_PER_REQUEST, key schema pk (S, HASH) + sk (B, RANGE), a stream with
NEW_AND_OLD_IMAGES (the change feed), and time to live on attribute `x`
(superseded value chunks expire through it). It is a no-op for a table that
already has that shape (it enables a missing stream or TTL), and an error for
a table with another key schema.

`item_model(name)` is the PynamoDB `Model` of the items, for reading a table
from a shell or an ops script (`item_model("app").query("d:...")`). The adapter
itself does not go through it; `runtime/store/dynamodb.py` says why.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .port import StoreError

if TYPE_CHECKING:
    from pynamodb.models import Model

__all__ = ["TTL_ATTRIBUTE", "create_table", "item_model"]

TTL_ATTRIBUTE = "x"


def _code(e: Exception) -> str:
    response = getattr(e, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def create_table(client: Any, table_name: str, *, wait: bool = True, stream: bool = True) -> None:
    """Create the adapter's table on `client` (a boto3 DynamoDB client) unless
    it exists. `wait`: return once it is ACTIVE (TTL is only switched on then).
    `stream=False`: no stream, so no change feed (tests that never read one:
    DynamoDB Local slows down as stream records pile up)."""
    from botocore.exceptions import ClientError

    spec_on = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    extra: dict[str, Any] = {"StreamSpecification": spec_on} if stream else {}
    try:
        client.create_table(
            TableName=table_name,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "B"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            **extra,
        )
    except ClientError as e:
        if _code(e) != "ResourceInUseException":
            raise StoreError(f"cannot create DynamoDB table {table_name}: {e}") from e
        desc = client.describe_table(TableName=table_name)["Table"]
        schema = {(k["AttributeName"], k["KeyType"]) for k in desc["KeySchema"]}
        if schema != {("pk", "HASH"), ("sk", "RANGE")}:
            raise StoreError(
                f"DynamoDB table {table_name} exists with another key schema: {sorted(schema)}"
            ) from e
        spec = desc.get("StreamSpecification") or {}
        if not stream:
            pass  # a table without a change feed (tests that never read one)
        elif not spec.get("StreamEnabled"):
            client.update_table(TableName=table_name, StreamSpecification=spec_on)
        elif spec.get("StreamViewType") != "NEW_AND_OLD_IMAGES":
            raise StoreError(
                f"DynamoDB table {table_name} has a {spec.get('StreamViewType')} stream; "
                "the change feed needs NEW_AND_OLD_IMAGES"
            ) from e
    if not wait:
        return
    _wait_active(client, table_name)
    try:
        ttl = client.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
        if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            client.update_time_to_live(
                TableName=table_name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
            )
    except ClientError as e:  # TTL only collects garbage: never fail on it
        if _code(e) not in ("ValidationException", "UnknownOperationException"):
            raise StoreError(f"cannot enable TTL on DynamoDB table {table_name}: {e}") from e


def _wait_active(client: Any, table_name: str, *, seconds: int = 300) -> None:
    """Until the table is ACTIVE (DescribeTable each second: botocore's
    table_exists waiter does the same, and the Lambdas' client has none)."""
    for _ in range(seconds):
        desc = client.describe_table(TableName=table_name)["Table"]
        if desc.get("TableStatus") == "ACTIVE":
            return
        time.sleep(1)
    raise StoreError(f"DynamoDB table {table_name} is not ACTIVE after {seconds} s")


def item_model(
    table_name: str, *, host: str | None = None, region: str | None = None
) -> type[Model]:
    """The PynamoDB model of the items of table `table_name` (a class made at
    run time: PynamoDB binds the table name and connection to the class).

    Attributes: pk (hash), sk (range, b"\\x00" + the port's sort key), v (value
    or its first chunk), n (version; absent on a large commit's placeholder),
    f (feed write), ts (commit ns), c and t (chunk count and token), x (expiry
    of a superseded chunk), lk / li / lts (a large commit's lock: its txid, the
    op's index, its commit ns; `dynamodb_large.py`)."""
    from pynamodb.attributes import (
        BinaryAttribute,
        BooleanAttribute,
        NumberAttribute,
        TTLAttribute,
        UnicodeAttribute,
    )
    from pynamodb.models import Model

    meta: dict[str, Any] = {
        "table_name": table_name,
        "billing_mode": "PAY_PER_REQUEST",
        "stream_view_type": "NEW_AND_OLD_IMAGES",
    }
    if host:
        meta["host"] = host
    if region:
        meta["region"] = region
    attrs: dict[str, Any] = {
        "__doc__": f"An item of the store table {table_name}.",
        "Meta": type("Meta", (), meta),
        "pk": UnicodeAttribute(hash_key=True),
        "sk": BinaryAttribute(range_key=True, legacy_encoding=False),
        "v": BinaryAttribute(null=True, legacy_encoding=False),
        "n": NumberAttribute(null=True),
        "f": BooleanAttribute(null=True),
        "ts": NumberAttribute(null=True),
        "vt": NumberAttribute(null=True),
        "c": NumberAttribute(null=True),
        "t": BinaryAttribute(null=True, legacy_encoding=False),
        TTL_ATTRIBUTE: TTLAttribute(null=True),
        "lk": UnicodeAttribute(null=True),
        "li": NumberAttribute(null=True),
        "lts": NumberAttribute(null=True),
    }
    return type(f"StoreItem_{table_name}", (Model,), attrs)
