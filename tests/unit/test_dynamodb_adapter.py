"""What is particular to the DynamoDB adapter (the port itself is covered by
the conformance suite): cancellation reasons, request tokens, the endpoint
from the environment, values past DynamoDB's item size, long sort keys, the
table, and the change feed from streams.

Error paths DynamoDB Local and moto never produce (TransactionConflict,
throttling, a token still in progress) are injected with botocore's Stubber.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from runtime.store.dynamodb import DynamoDBStore, create_table, item_model
from runtime.store.port import (
    Bump,
    Change,
    Check,
    Delete,
    Key,
    Op,
    Put,
    Store,
    StoreError,
    TransactionConflict,
)
from tests.support.aws import dynamodb_local_client, fake_aws_env

TABLE = "store_table"
A: Key = ("d:a", b"")
B: Key = ("i:t:x", b"\x01\x02")
C: Key = ("v:t", b"\x03")

MIB = 1 << 20


# ---- stubbed client ----------------------------------------------------------------


def stubbed_store(**kw: Any) -> tuple[DynamoDBStore, Stubber]:
    client = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        endpoint_url="http://127.0.0.1:9",  # never reached: the stubber answers
    )
    return DynamoDBStore(TABLE, client=client, **kw), Stubber(client)


def cancelled(stub: Stubber, *codes: str, item: dict[str, Any] | None = None) -> None:
    reasons: list[dict[str, Any]] = []
    for code in codes:
        reason: dict[str, Any] = {"Code": code}
        if code != "None":
            reason["Message"] = f"{code} happened"
        if code == "ConditionalCheckFailed" and item is not None:
            reason["Item"] = item
        reasons.append(reason)
    stub.add_client_error(
        "transact_write_items",
        service_error_code="TransactionCanceledException",
        service_message=f"Transaction cancelled [{', '.join(codes)}]",
        http_status_code=400,
        modeled_fields={"CancellationReasons": reasons},
    )


def three_ops() -> list[Op]:
    return [Put(A, b"doc", expect=1, feed=True), Put(B, b"id"), Bump(C, expect=4)]


def test_transaction_conflict_reason_names_no_keys() -> None:
    store, stub = stubbed_store()
    cancelled(stub, "None", "TransactionConflict", "None")
    with stub, pytest.raises(TransactionConflict) as info:
        store.transact(three_ops())
    assert info.value.keys == []
    assert "TransactionConflict" in info.value.reason
    stub.assert_no_pending_responses()


@pytest.mark.parametrize("index", [0, 1, 2])
def test_conditional_check_failed_names_the_key_of_its_op(index: int) -> None:
    store, stub = stubbed_store()
    codes = ["None"] * 3
    codes[index] = "ConditionalCheckFailed"
    cancelled(stub, *codes)
    # a failure without the old item in the reason is read back once
    if index < 2:
        stub.add_response(
            "batch_get_item",
            {"Responses": {TABLE: [{"pk": {"S": "d:a"}, "sk": {"B": b"\x00"}, "n": {"N": "7"}}]}},
        )
    ops = three_ops()
    with stub, pytest.raises(TransactionConflict) as info:
        store.transact(ops)
    assert info.value.keys == [ops[index].key]


def test_condition_failures_win_over_other_reasons() -> None:
    store, stub = stubbed_store()
    cancelled(stub, "TransactionConflict", "None", "ConditionalCheckFailed")
    with stub, pytest.raises(TransactionConflict) as info:
        store.transact(three_ops())
    assert info.value.keys == [C]


def test_throttling_is_a_conflict_and_validation_a_store_error() -> None:
    store, stub = stubbed_store()
    cancelled(stub, "ThrottlingError", "None", "None")
    cancelled(stub, "ValidationError", "None", "None")
    with stub:
        with pytest.raises(TransactionConflict) as conflict:
            store.transact(three_ops())
        assert conflict.value.keys == []
        with pytest.raises(StoreError, match="ValidationError"):
            store.transact(three_ops())


def test_other_client_errors_are_store_errors_with_the_aws_message() -> None:
    store, stub = stubbed_store()
    stub.add_client_error(
        "transact_write_items",
        service_error_code="ResourceNotFoundException",
        service_message="Requested resource not found",
    )
    stub.add_client_error(
        "query", service_error_code="AccessDeniedException", service_message="no access"
    )
    with stub:
        with pytest.raises(StoreError, match="Requested resource not found"):
            store.transact(three_ops())
        with pytest.raises(StoreError, match="no access"):
            store.scan("p")


def capture_tokens(store: DynamoDBStore) -> list[str]:
    tokens: list[str] = []

    def hook(params: dict[str, Any], **_: Any) -> None:
        tokens.append(params["ClientRequestToken"])

    store.client.meta.events.register("provide-client-params.dynamodb.TransactWriteItems", hook)
    return tokens


def test_every_commit_carries_a_fresh_client_request_token() -> None:
    store, stub = stubbed_store()
    tokens = capture_tokens(store)
    for _ in range(2):
        stub.add_response(
            "transact_write_items", {}, {"TransactItems": ANY, "ClientRequestToken": ANY}
        )
    with stub:
        store.transact(three_ops())
        store.transact(three_ops())
    assert len(tokens) == 2 and tokens[0] != tokens[1]
    assert all(uuid.UUID(t) for t in tokens)


def test_a_commit_still_in_progress_is_resent_with_the_same_token() -> None:
    store, stub = stubbed_store()
    tokens = capture_tokens(store)
    stub.add_client_error(
        "transact_write_items",
        service_error_code="TransactionInProgressException",
        service_message="in progress",
    )
    stub.add_response("transact_write_items", {})
    with stub:
        store.transact(three_ops())
    assert len(tokens) == 2 and tokens[0] == tokens[1]


def test_the_transaction_sent_for_each_op_kind() -> None:
    store, stub = stubbed_store(clock=lambda: 1234)
    sent: list[dict[str, Any]] = []
    store.client.meta.events.register(
        "provide-client-params.dynamodb.TransactWriteItems",
        lambda params, **_: sent.extend(params["TransactItems"]),
    )
    stub.add_response("transact_write_items", {})
    ops: list[Op] = [
        Check(("d:c", b""), 3),
        Put(A, b"new", expect=2, feed=True),
        Put(B, b"id"),
        Delete(("d:gone", b""), expect=5, feed=True),
        Bump(C),
        Check(("d:absent", b""), 0),
    ]
    with stub:
        assert store.transact(ops).ts == 1234
    check, put, update, delete, bump, absent = sent
    assert (
        check["ConditionCheck"]["ConditionExpression"]
        == "#n = :expect AND attribute_not_exists(#lk)"
    )
    assert check["ConditionCheck"]["ExpressionAttributeValues"] == {":expect": {"N": "3"}}
    assert put["Put"]["Item"]["n"] == {"N": "3"} and put["Put"]["Item"]["ts"] == {"N": "1234"}
    assert put["Put"]["Item"]["f"] == {"BOOL": True}
    assert put["Put"]["ConditionExpression"] == (
        "#n = :expect AND attribute_not_exists(c) AND attribute_not_exists(#lk)"
    )
    assert put["Put"]["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"
    assert "ADD #n :one" in update["Update"]["UpdateExpression"]
    assert (
        update["Update"]["ConditionExpression"]
        == "attribute_not_exists(c) AND attribute_not_exists(#lk)"
    )
    assert delete["Delete"]["ConditionExpression"] == (
        "#n = :expect AND attribute_not_exists(c) AND attribute_not_exists(#lk)"
    )
    assert (
        bump["Update"]["UpdateExpression"] == "SET #vt = :ts ADD #n :one"
        and bump["Update"]["ExpressionAttributeValues"][":ts"] == {"N": "1234"}
        and bump["Update"]["ConditionExpression"] == "attribute_not_exists(#lk)"
    )
    assert absent["ConditionCheck"]["ConditionExpression"] == "attribute_not_exists(pk)"
    assert put["Put"]["Item"]["sk"] == {"B": b"\x00"}


def capture_conditions(store: DynamoDBStore) -> list[tuple[str, dict[str, Any]]]:
    """(condition, values) of the first entry of every commit sent."""
    seen: list[tuple[str, dict[str, Any]]] = []

    def hook(params: dict[str, Any], **_: Any) -> None:
        entry = next(iter(params["TransactItems"][0].values()))
        seen.append(
            (entry.get("ConditionExpression", ""), entry.get("ExpressionAttributeValues", {}))
        )

    store.client.meta.events.register("provide-client-params.dynamodb.TransactWriteItems", hook)
    return seen


def chunked_item(version: int, token: bytes) -> dict[str, Any]:
    return {
        "pk": {"S": "d:a"},
        "sk": {"B": b"\x00"},
        "n": {"N": str(version)},
        "c": {"N": "2"},
        "t": {"B": token},
    }


def test_overwriting_a_chunked_value_pins_its_chunks_then_retires_them() -> None:
    store, stub = stubbed_store()
    conditions = capture_conditions(store)
    token = b"T" * 16
    cancelled(stub, "ConditionalCheckFailed", "None")  # no Item: read back
    stub.add_response("batch_get_item", {"Responses": {TABLE: [chunked_item(3, token)]}})
    stub.add_response("transact_write_items", {})
    stub.add_response(
        "update_item",
        {},
        {
            "TableName": TABLE,
            "Key": {"pk": {"S": "~chunk:" + token.hex()}, "sk": {"B": b"\x00\x01"}},
            "UpdateExpression": "SET #x = :x",
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeNames": {"#x": "x"},
            "ExpressionAttributeValues": ANY,
        },
    )
    with stub:
        store.transact([Put(A, b"small", feed=True), Bump(C)])
    stub.assert_no_pending_responses()
    assert conditions[0][0] == "attribute_not_exists(c) AND attribute_not_exists(#lk)"
    assert conditions[1][0] == "#t = :oldtoken AND attribute_not_exists(#lk)"
    assert conditions[1][1][":oldtoken"] == {"B": token}


def test_a_pin_is_dropped_when_the_value_stopped_being_chunked() -> None:
    store, stub = stubbed_store()
    conditions = capture_conditions(store)
    cancelled(stub, "ConditionalCheckFailed", item=chunked_item(3, b"T" * 16))
    cancelled(
        stub,
        "ConditionalCheckFailed",
        item={"pk": {"S": "d:a"}, "sk": {"B": b"\x00"}, "n": {"N": "4"}},
    )
    stub.add_response("transact_write_items", {})  # and no chunk to retire
    with stub:
        store.transact([Put(A, b"small")])
    stub.assert_no_pending_responses()
    assert [c[0] for c in conditions] == [
        "attribute_not_exists(c) AND attribute_not_exists(#lk)",
        "#t = :oldtoken AND attribute_not_exists(#lk)",
        "attribute_not_exists(c) AND attribute_not_exists(#lk)",
    ]


def test_a_stale_version_of_a_chunked_value_is_a_conflict_not_a_pin() -> None:
    store, stub = stubbed_store()
    cancelled(stub, "ConditionalCheckFailed", item=chunked_item(3, b"T" * 16))
    with stub, pytest.raises(TransactionConflict) as info:
        store.transact([Delete(A, expect=2)])
    assert info.value.keys == [A]


def test_too_many_items_is_a_store_error_counting_chunks() -> None:
    store, stub = stubbed_store(max_transaction_items=4)
    with stub:
        with pytest.raises(StoreError, match="5 items"):
            store.transact([Bump(("v:t", bytes([i]))) for i in range(5)])
        with pytest.raises(StoreError, match="2 extra chunks"):
            store.transact([Put(A, b"x" * MIB), Bump(B), Bump(C)])
    stub.assert_no_pending_responses()


def test_a_hybrid_clock_keeps_commit_timestamps_increasing() -> None:
    store, stub = stubbed_store(clock=lambda: 1000)
    for _ in range(3):
        stub.add_response("transact_write_items", {})
    with stub:
        assert [store.transact([Bump(C)]).ts for _ in range(3)] == [1000, 1001, 1002]


# ---- endpoint from the environment -----------------------------------------------


@pytest.mark.parametrize("variable", ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"])
def test_endpoint_comes_from_the_environment(variable: str) -> None:
    others = {"AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_DYNAMODB": ""}
    with fake_aws_env(**{**others, variable: "http://127.0.0.1:8123"}):
        for k in others:
            if k != variable:
                os.environ.pop(k)
        store = DynamoDBStore(TABLE)
        assert store.client.meta.endpoint_url == "http://127.0.0.1:8123"


@pytest.mark.dynamodb_local
def test_a_store_built_from_the_environment_runs_on_dynamodb_local(
    dynamodb_local_endpoint: str,
) -> None:
    env = {
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_local_endpoint,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
    }
    name = f"env{uuid.uuid4().hex[:8]}"
    with fake_aws_env(**env):
        os.environ.pop("AWS_SESSION_TOKEN")
        store = DynamoDBStore(name)
        create_table(store.client, name)
        try:
            store.transact([Put(A, b"hello", expect=0, feed=True)])
            assert [c.new_value for c in store.read_changes().changes] == [b"hello"]
        finally:
            store.client.delete_table(TableName=name)


# ---- on moto and DynamoDB Local ---------------------------------------------------


@pytest.fixture(params=["moto", pytest.param("dynamodb_local", marks=pytest.mark.dynamodb_local)])
def dstore(
    request: pytest.FixtureRequest, store_factory: Callable[[str], Iterator[Store]]
) -> Iterator[DynamoDBStore]:
    if request.param == "dynamodb_local" and os.environ.get("SKIP_DYNAMODB_LOCAL") == "1":
        pytest.skip("SKIP_DYNAMODB_LOCAL=1")
    it = store_factory(request.param)
    store = next(it)
    assert isinstance(store, DynamoDBStore)
    yield store
    for _ in it:
        pass


def raw_items(store: DynamoDBStore) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kw: dict[str, Any] = {"TableName": store.table, "ConsistentRead": True}
    while True:
        resp = store.client.scan(**kw)
        items += resp["Items"]
        if "LastEvaluatedKey" not in resp:
            return items
        kw["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


def chunk_items(store: DynamoDBStore) -> list[dict[str, Any]]:
    return [i for i in raw_items(store) if i["pk"]["S"].startswith("~chunk:")]


def test_values_up_to_one_mib_round_trip(dstore: DynamoDBStore) -> None:
    big = os.urandom(MIB)
    mid = os.urandom(400_001)
    dstore.transact([Put(A, big, expect=0, feed=True), Put(("d:b", b""), mid), Put(B, b"")])
    assert len(chunk_items(dstore)) == 2 + 1
    got = dstore.get([A, ("d:b", b""), B, ("d:none", b"")])
    assert [i.value if i else None for i in got] == [big, mid, b"", None]
    assert [i.version if i else None for i in got] == [1, 1, 1, None]
    assert [i.value for i in dstore.scan("d:a")] == [big]
    assert [i.value for i in dstore.scan("d:a", reverse=True, limit=1)] == [big]


def test_replacing_a_chunked_value_retires_its_chunks(dstore: DynamoDBStore) -> None:
    v1, v2, v3 = os.urandom(MIB), os.urandom(700_001), os.urandom(10)
    dstore.transact([Put(A, v1, expect=0, feed=True)])
    dstore.transact([Put(A, v2, expect=1, feed=True)])  # conditional, chunked -> chunked
    item = dstore.get([A])[0]
    assert item is not None and item.value == v2 and item.version == 2
    dstore.transact([Put(A, v3, feed=True)])  # unconditional, chunked -> small
    item = dstore.get([A])[0]
    assert item is not None and item.value == v3 and item.version == 3
    chunks = chunk_items(dstore)
    assert len(chunks) == 2 + 2 and all("x" in c for c in chunks)  # all superseded
    dstore.transact([Put(A, v1, expect=3, feed=True)])
    dstore.transact([Delete(A, expect=4, feed=True)])
    assert dstore.get([A]) == [None]
    assert all("x" in c for c in chunk_items(dstore))
    changes = dstore.read_changes().changes
    assert [(c.old_value, c.new_value) for c in changes] == [
        (None, v1),
        (v1, v2),
        (v2, v3),
        (v3, v1),
        (v1, None),
    ]


def test_a_stale_expectation_on_a_chunked_value_is_a_conflict(dstore: DynamoDBStore) -> None:
    dstore.transact([Put(A, os.urandom(MIB), expect=0)])
    with pytest.raises(TransactionConflict) as info:
        dstore.transact([Put(A, b"x", expect=7), Bump(C)])
    assert info.value.keys == [A]
    with pytest.raises(TransactionConflict):
        dstore.transact([Delete(A, expect=0)])
    assert dstore.get([C]) == [None]


def test_long_sort_keys_and_bounds(dstore: DynamoDBStore) -> None:
    keys = [b"a" * 1023, b"a" * 1022 + b"b", b"a" * 1000]
    dstore.transact([Put(("p", k), k[-1:]) for k in keys])
    everything = sorted(keys)
    assert [i.key[1] for i in dstore.scan("p")] == everything
    # resume after the longest key: a 1,024-byte bound
    assert [i.key[1] for i in dstore.scan("p", lo=keys[0] + b"\x00")] == [keys[1]]
    assert [i.key[1] for i in dstore.scan("p", hi=keys[0] + b"\x00")] == everything[:2]
    assert [i.key[1] for i in dstore.scan("p", lo=keys[2], hi=keys[0])] == [keys[2]]
    assert [i.key[1] for i in dstore.scan("p", hi=keys[0], reverse=True)] == [keys[2]]
    with pytest.raises(StoreError):
        dstore.transact([Put(("p", b"a" * 1024), b"")])


def test_pages_of_a_scan_are_followed(dstore: DynamoDBStore) -> None:
    value = b"v" * 300_000  # ~1 MB per Query page: several pages
    dstore.transact([Put(("p", bytes([i])), value) for i in range(12)])
    assert len(dstore.scan("p", limit=12)) == 12
    assert [i.key[1] for i in dstore.scan("p", lo=b"\x02", hi=b"\x0a", reverse=True, limit=3)] == [
        b"\x09",
        b"\x08",
        b"\x07",
    ]


def test_create_table_is_idempotent(dstore: DynamoDBStore) -> None:
    create_table(dstore.client, dstore.table)
    desc = dstore.client.describe_table(TableName=dstore.table)["Table"]
    assert desc["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert desc["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = dstore.client.describe_time_to_live(TableName=dstore.table)["TimeToLiveDescription"]
    assert ttl.get("AttributeName") == "x"


def test_create_table_refuses_another_key_schema(dstore: DynamoDBStore) -> None:
    name = f"other{uuid.uuid4().hex[:8]}"
    dstore.client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )
    try:
        with pytest.raises(StoreError, match="another key schema"):
            create_table(dstore.client, name)
    finally:
        dstore.client.delete_table(TableName=name)


def test_the_feed_from_streams(dstore: DynamoDBStore) -> None:
    k2: Key = ("d:b", b"")
    r1 = dstore.transact([Put(A, b"1", expect=0, feed=True), Put(B, b"index entry"), Bump(C)])
    r2 = dstore.transact([Put(A, b"2", expect=1, feed=True), Put(k2, b"b", feed=True)])
    dstore.transact([Bump(A)])  # a version bump of a feed item: not a change
    dstore.transact([Put(k2, b"b2", feed=False), Bump(C)])  # not in the feed
    dstore.transact([Delete(A, expect=3, feed=True)])
    batch = dstore.read_changes()
    assert [(c.key, c.old_value, c.new_value) for c in batch.changes] == [
        (A, None, b"1"),
        (A, b"1", b"2"),
        (k2, None, b"b"),
        (A, b"2", None),
    ]
    ts = [c.ts for c in batch.changes]
    assert ts[:3] == [r1.ts, r2.ts, r2.ts] and ts[3] > r2.ts
    # nothing new after the position, asked twice (a cached iterator is reusable)
    assert dstore.read_changes(batch.position).changes == []
    assert dstore.read_changes(batch.position).changes == []
    r3 = dstore.transact([Put(k2, b"b3", feed=True)])
    after = dstore.read_changes(batch.position)
    assert after.changes == [Change(k2, b"b2", b"b3", r3.ts)]
    assert dstore.read_changes(after.position).changes == []


def test_the_feed_in_pages(dstore: DynamoDBStore) -> None:
    for i in range(7):
        dstore.transact([Put(("d:x", bytes([i])), bytes([i]), feed=True), Bump(C)])
    seen: list[bytes] = []
    position = None
    for _ in range(10):
        batch = dstore.read_changes(position, limit=3)
        assert len(batch.changes) <= 3
        seen += [c.new_value or b"" for c in batch.changes]
        position = batch.position
        if not batch.changes:
            break
    assert seen == [bytes([i]) for i in range(7)]


def test_a_bad_position_is_a_store_error(dstore: DynamoDBStore) -> None:
    with pytest.raises(StoreError, match="position"):
        dstore.read_changes("not json")


def test_the_pynamodb_model_reads_the_items(dstore: DynamoDBStore) -> None:
    dstore.transact([Put(A, b"value", expect=0, feed=True)])
    meta = dstore.client.meta
    with fake_aws_env(AWS_ACCESS_KEY_ID="local", AWS_SECRET_ACCESS_KEY="local"):
        if "127.0.0.1" in meta.endpoint_url:
            os.environ.pop("AWS_SESSION_TOKEN")
        model = item_model(dstore.table, host=meta.endpoint_url, region=meta.region_name)
        item: Any = model.get("d:a", b"\x00", consistent_read=True)
    assert (item.v, item.n, item.f) == (b"value", 1, True)


# ---- DynamoDB Local only -----------------------------------------------------------


@pytest.mark.dynamodb_local
def test_streams_client_defaults_to_the_local_endpoint(dynamodb_local_endpoint: str) -> None:
    name = f"s{uuid.uuid4().hex[:8]}"
    client = dynamodb_local_client(dynamodb_local_endpoint)
    create_table(client, name)
    try:
        with fake_aws_env(AWS_ACCESS_KEY_ID="local", AWS_SECRET_ACCESS_KEY="local"):
            os.environ.pop("AWS_SESSION_TOKEN")
            store = DynamoDBStore(name, client=client)
            store.transact([Put(A, b"v", feed=True)])
            assert [c.new_value for c in store.read_changes().changes] == [b"v"]
    finally:
        client.delete_table(TableName=name)
